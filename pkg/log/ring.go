package log

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

// RingOptions configures the "memory" outlet type. At least one limit must
// be set; the ring keeps the newest lines within both.
type RingOptions struct {
	Lines int
	Bytes int
}

// Line is one line held by a Ring.
type Line struct {
	Seq  uint64    // 1 for the first line written to the ring
	Time time.Time // when it was written
	Data []byte    // the rendered line, ending in '\n'; read-only
}

// Ring keeps the last lines written to it in memory, numbered in order.
// Its methods are safe for concurrent use.
type Ring struct {
	opts RingOptions

	mu    sync.Mutex
	lines []Line // oldest first, from head
	head  int
	bytes int
	seq   uint64
}

func openRing(s *Spec, _ Env) (Sink, error) {
	o := s.Ring
	if s.Path != "" {
		lines, bytes, err := parseRingPath(s.Path)
		if err != nil {
			return nil, err
		}
		if o.Lines == 0 {
			o.Lines = lines
		}
		if o.Bytes == 0 {
			o.Bytes = bytes
		}
	}
	return NewRing(o)
}

// parseRingPath parses libmtev's memory path, "lines" or "lines,bytes";
// bytes may carry a unit ("64KiB").
func parseRingPath(p string) (lines, bytes int, err error) {
	ls, bs, hasBytes := strings.Cut(p, ",")
	if lines, err = strconv.Atoi(strings.TrimSpace(ls)); err != nil || lines < 0 {
		return 0, 0, fmt.Errorf("log: memory path %q: want \"lines\" or \"lines,bytes\": %w", p, ErrInvalid)
	}
	if hasBytes {
		var b int64
		if b, err = config.ParseSize(bs); err != nil || b > math.MaxInt32 {
			return 0, 0, fmt.Errorf("log: memory path %q: want \"lines\" or \"lines,bytes\": %w", p, ErrInvalid)
		}
		bytes = int(b)
	}
	return lines, bytes, nil
}

// NewRing returns a Ring with the given limits.
func NewRing(o RingOptions) (*Ring, error) {
	if o.Lines < 0 || o.Bytes < 0 || (o.Lines == 0 && o.Bytes == 0) {
		return nil, fmt.Errorf("log: memory ring: need a positive line or byte limit: %w", ErrInvalid)
	}
	return &Ring{opts: o}, nil
}

// WriteLine stores a copy of line, evicting the oldest lines beyond the
// limits. A line longer than the byte limit is kept alone.
func (r *Ring) WriteLine(line []byte) error {
	data := append([]byte(nil), line...)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	r.lines = append(r.lines, Line{Seq: r.seq, Time: now, Data: data})
	r.bytes += len(data)
	for r.len() > 1 && ((r.opts.Lines > 0 && r.len() > r.opts.Lines) || (r.opts.Bytes > 0 && r.bytes > r.opts.Bytes)) {
		r.bytes -= len(r.lines[r.head].Data)
		r.lines[r.head] = Line{}
		r.head++
	}
	if r.head > 64 && r.head*2 > len(r.lines) {
		n := copy(r.lines, r.lines[r.head:])
		clear(r.lines[n:])
		r.lines = r.lines[:n]
		r.head = 0
	}
	return nil
}

func (r *Ring) len() int { return len(r.lines) - r.head }

// Since returns the retained lines whose sequence number is at least seq,
// oldest first. Pass the last sequence seen plus one to follow the ring;
// a first line with a sequence above the one asked for means lines were
// evicted before they were read.
func (r *Ring) Since(seq uint64) []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := r.lines[r.head:]
	i := 0
	if len(live) > 0 && seq > live[0].Seq {
		i = int(min(seq-live[0].Seq, uint64(len(live))))
	}
	return append([]Line(nil), live[i:]...)
}

// Last returns the sequence number of the newest line, 0 if none.
func (r *Ring) Last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// Close does nothing; the lines stay readable.
func (r *Ring) Close() error { return nil }
