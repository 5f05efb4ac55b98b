package watchdog

import (
	"bufio"
	"errors"
	"os"
	"sync"
)

// Stream names a child output stream.
type Stream string

const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// Line is one line of child output. Text excludes the newline. A line longer
// than MaxLine is delivered in pieces of MaxLine bytes, all but the last with
// Partial set; a last line without a newline at EOF is delivered as is.
type Line struct {
	Stream  Stream
	PID     int
	Text    []byte // valid only during the OutputFunc call
	Partial bool
}

// MaxLine is the longest piece of a line delivered at once.
const MaxLine = 64 << 10

// OutputFunc receives every line of child output, from one goroutine per
// stream. It may block: the child then blocks writing, and no line is lost.
type OutputFunc func(Line)

// tail keeps the last n lines of output for the incident record.
type tail struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

func newTail(n int) *tail { return &tail{lines: make([]string, n)} }

func (t *tail) add(s string) {
	if len(t.lines) == 0 {
		return
	}
	t.mu.Lock()
	t.lines[t.next] = s
	t.next++
	if t.next == len(t.lines) {
		t.next, t.full = 0, true
	}
	t.mu.Unlock()
}

// snapshot returns the kept lines, oldest first.
func (t *tail) snapshot() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.full {
		return append([]string{}, t.lines[:t.next]...)
	}
	out := make([]string, 0, len(t.lines))
	out = append(out, t.lines[t.next:]...)
	return append(out, t.lines[:t.next]...)
}

// pump reads lines from r until EOF, handing each to out, to the tail and
// to tap (if not nil). It closes r when done.
func pump(r *os.File, stream Stream, pid int, out OutputFunc, t *tail, tap func([]byte, bool)) {
	defer r.Close()
	br := bufio.NewReaderSize(r, MaxLine)
	for {
		b, err := br.ReadSlice('\n')
		partial := false
		switch {
		case err == nil:
			b = b[:len(b)-1]
		case errors.Is(err, bufio.ErrBufferFull):
			partial = true
		case len(b) == 0:
			return // EOF or a read error: the writer side is gone
		}
		t.add(string(b))
		if tap != nil {
			tap(b, partial)
		}
		if out != nil {
			out(Line{Stream: stream, PID: pid, Text: b, Partial: partial})
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return // the last line before EOF had no newline
		}
	}
}

// StartsFatal reports whether a line of a child's standard error starts Go
// fatal output ("panic: ", "fatal error: ", "SIGSEGV: segmentation
// violation", ...), for consumers of Options.Output.
func StartsFatal(line []byte) bool { return startsFatal(line) }
