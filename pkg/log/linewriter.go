package log

import (
	"bytes"
	"sync"

	"github.com/rs/zerolog"
)

// MaxLineBytes is the longest line a LineWriter logs whole; a longer run
// of bytes without a newline is logged in pieces of this size.
const MaxLineBytes = 64 << 10

// LineWriter is an io.WriteCloser that splits what is written to it into
// lines and logs each as the message of one line of a facility, e.g. a
// child process's standard output. It is safe for concurrent use, though
// concurrent writers' partial lines interleave.
type LineWriter struct {
	f      *Facility
	fields func(*zerolog.Event)

	mu  sync.Mutex
	buf []byte
}

// LineWriter returns a LineWriter logging to f. fields, if not nil, adds
// fields to each line (it is given nil when the facility is disabled;
// zerolog's methods accept that).
func (f *Facility) LineWriter(fields func(e *zerolog.Event)) *LineWriter {
	return &LineWriter{f: f, fields: fields}
}

// Write logs every complete line in p and keeps a trailing partial line
// for the next Write or Close. It never fails.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= MaxLineBytes {
				w.emit(w.buf[:MaxLineBytes])
				w.buf = append(w.buf[:0], w.buf[MaxLineBytes:]...)
			}
			break
		}
		if len(w.buf) > 0 {
			w.buf = append(w.buf, p[:i]...)
			w.emitLong(w.buf)
			w.buf = w.buf[:0]
		} else {
			w.emitLong(p[:i])
		}
		p = p[i+1:]
	}
	return n, nil
}

func (w *LineWriter) emitLong(line []byte) {
	for len(line) > MaxLineBytes {
		w.emit(line[:MaxLineBytes])
		line = line[MaxLineBytes:]
	}
	w.emit(line)
}

func (w *LineWriter) emit(line []byte) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	e := w.f.Log()
	if e == nil {
		return
	}
	if w.fields != nil {
		w.fields(e)
	}
	e.Bytes(fieldMessage, line).Send()
}

// Close logs a trailing partial line, if any. It is idempotent.
func (w *LineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emitLong(w.buf)
		w.buf = w.buf[:0]
	}
	return nil
}
