package log

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// Format selects how an outlet renders a line.
type Format uint8

// Formats.
const (
	// FormatPlain renders "time [facility] message key=value ...".
	FormatPlain Format = iota
	// FormatJSON renders one JSON object per line, as zerolog produces it.
	FormatJSON
)

// String returns "plain" or "json".
func (f Format) String() string {
	if f == FormatJSON {
		return "json"
	}
	return "plain"
}

// ParseFormat parses "plain" or "json".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "plain", "":
		return FormatPlain, nil
	case "json":
		return FormatJSON, nil
	}
	return 0, fmt.Errorf("log: parse format %q: want plain or json: %w", s, ErrInvalid)
}

// Mode selects whether an outlet is written by the caller or by a writer
// goroutine of its own.
type Mode uint8

// Modes.
const (
	// ModeDefault uses the mode the outlet type declares.
	ModeDefault Mode = iota
	// ModeSync writes each line in the calling goroutine before the logging
	// call returns: nothing is held in memory, so a crash loses nothing that
	// was logged.
	ModeSync
	// ModeAsync copies each line into a bounded queue drained by a writer
	// goroutine; Overflow says what happens when the queue is full.
	ModeAsync
)

// Overflow is the policy of an asynchronous outlet whose queue is full.
type Overflow uint8

// Overflow policies.
const (
	// Block makes the writer wait for room: no line is ever dropped.
	Block Overflow = iota
	// Drop discards the line and counts it in Stats.Dropped.
	Drop
)

// String returns "block" or "drop".
func (o Overflow) String() string {
	if o == Drop {
		return "drop"
	}
	return "block"
}

// Toggle is a setting that a Spec may leave unset.
type Toggle uint8

// Toggle values.
const (
	// Unset leaves the current value (or the default for a new facility).
	Unset Toggle = iota
	// On sets the flag.
	On
	// Off clears the flag.
	Off
)

// DefaultQueueBytes is the capacity of an asynchronous outlet's queue when
// Spec.QueueBytes is zero.
const DefaultQueueBytes = 1 << 20

// Spec describes one facility: its outlets (the facilities it forwards to)
// and, when Type is set, the output it writes itself.
type Spec struct {
	// Name is the facility name, e.g. "debug/eventer". Required.
	Name string
	// Type is a registered outlet type ("stderr", "file", "file_synch",
	// "memory", "journal", or one added with Register). Empty means the
	// facility only forwards to its outlets.
	Type string
	// Path is the type's target: a file path for "file", a directory for
	// "journal", "lines,bytes" for "memory".
	Path string
	// Outlets are the facilities this one forwards to. When empty for an
	// existing facility, its outlets are left as they are.
	Outlets []string
	// Disabled and Debug toggle the facility; Debug adds the caller's
	// file:line to each line.
	Disabled, Debug Toggle
	// Format is how this facility's own output is rendered.
	Format Format
	// Mode, Overflow and QueueBytes govern how output is written.
	Mode       Mode
	Overflow   Overflow
	QueueBytes int
	// File configures "file" and "file_synch".
	File FileOptions
	// Ring configures "memory".
	Ring RingOptions
	// Journal configures "journal".
	Journal JournalOptions
	// Params carries type-specific settings for registered types.
	Params map[string]string
}

// JournalOptions configures the "journal" outlet type; zero values take
// pkg/journal's defaults.
type JournalOptions struct {
	SegmentBytes int64
	MaxBytes     int64
	MaxAge       time.Duration
	// Sync makes each line durable (fdatasync) before the next is written.
	// Without it a crash of the process still loses nothing written, but a
	// power cut may lose the newest lines.
	Sync bool
}

// Env is what an OpenFunc may use besides its Spec.
type Env struct {
	// Now is the Graph's clock.
	Now func() time.Time
	// Stderr is the Graph's standard error stream.
	Stderr io.Writer
}

// Sink is the output of a typed facility. The Graph serializes every call
// to a Sink's methods, so implementations need no locking of their own.
type Sink interface {
	// WriteLine writes one line, which ends in '\n'. The Sink must not
	// keep line after returning.
	WriteLine(line []byte) error
	// Close flushes and releases the Sink.
	Close() error
}

// Flusher is implemented by Sinks that buffer. The Graph calls Flush after
// each synchronous line and after each asynchronous batch.
type Flusher interface {
	Flush() error
}

// Reopener is implemented by Sinks that can reopen their target, e.g. a
// file renamed away by an external log rotator.
type Reopener interface {
	Reopen() error
}

// OpenFunc opens the Sink for spec.
type OpenFunc func(spec *Spec, env Env) (Sink, error)

// Type is a registered outlet type.
type Type struct {
	// Open opens a Sink.
	Open OpenFunc
	// Async makes ModeDefault mean ModeAsync for this type.
	Async bool
}

var (
	typesMu sync.RWMutex
	types   = map[string]Type{}
)

// Register adds an outlet type under name, replacing any earlier one. It
// is safe for concurrent use; types in use by open Graphs are unaffected.
func Register(name string, t Type) {
	typesMu.Lock()
	defer typesMu.Unlock()
	types[name] = t
}

// Types returns the registered type names, sorted.
func Types() []string {
	typesMu.RLock()
	defer typesMu.RUnlock()
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookupType(name string) (Type, bool) {
	typesMu.RLock()
	defer typesMu.RUnlock()
	t, ok := types[name]
	return t, ok
}

func init() {
	Register("stderr", Type{Open: func(_ *Spec, env Env) (Sink, error) {
		return NewWriterSink(env.Stderr), nil
	}})
	Register("file", Type{Open: openFile, Async: true})
	Register("file_synch", Type{Open: openFile})
	Register("memory", Type{Open: openRing})
}

// WriterSink writes lines to an io.Writer. Close does not close the writer.
type WriterSink struct {
	w io.Writer
}

// NewWriterSink returns a Sink writing to w.
func NewWriterSink(w io.Writer) *WriterSink { return &WriterSink{w: w} }

// WriteLine writes line to the writer.
func (s *WriterSink) WriteLine(line []byte) error {
	_, err := s.w.Write(line)
	return err
}

// Close does nothing.
func (s *WriterSink) Close() error { return nil }
