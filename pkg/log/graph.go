package log

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/trace"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
)

// Graph is a set of named facilities connected into a directed acyclic
// graph. The zero value is not usable; call New.
type Graph struct {
	now    func() time.Time
	stderr io.Writer

	// mu guards the topology (facs, every Facility's outlets, enabled and
	// node fields) and is held while routes are recompiled. It is never
	// taken on the logging path.
	mu     sync.Mutex
	facs   map[string]*Facility
	closed bool
}

// Option configures a Graph.
type Option func(*Graph)

// WithClock sets the clock used for timestamps and time-based rotation.
func WithClock(now func() time.Time) Option { return func(g *Graph) { g.now = now } }

// WithStderr sets the stream the "stderr" outlet type writes to.
func WithStderr(w io.Writer) Option { return func(g *Graph) { g.stderr = w } }

// New returns a Graph holding the built-in facilities: "stderr" (type
// stderr, plain), and "error", "notice" and "debug" forwarding to it, with
// "debug" disabled.
func New(opts ...Option) *Graph {
	g := &Graph{now: time.Now, stderr: os.Stderr, facs: map[string]*Facility{}}
	for _, o := range opts {
		o(g)
	}
	err := g.Configure(
		Spec{Name: "stderr", Type: "stderr"},
		Spec{Name: "error", Outlets: []string{"stderr"}},
		Spec{Name: "notice", Outlets: []string{"stderr"}},
		Spec{Name: "debug", Outlets: []string{"stderr"}, Disabled: On},
	)
	if err != nil {
		panic("log: built-in facilities: " + err.Error()) // cannot happen: fixed input
	}
	return g
}

// Facility is a named log stream. Log through it with Log; change it
// through its Graph. Its methods are safe for concurrent use.
type Facility struct {
	g    *Graph
	name string
	zl   zerolog.Logger

	// live is true when the facility is enabled and at least one enabled
	// output is reachable from it: the only thing a disabled write reads.
	live  atomic.Bool
	debug atomic.Bool
	route atomic.Pointer[[]*node]

	// Guarded by g.mu.
	enabled bool
	outlets []*Facility
	node    *node
}

// Name returns the facility's name.
func (f *Facility) Name() string { return f.name }

// Enabled reports whether a line logged now would reach any output.
func (f *Facility) Enabled() bool { return f.live.Load() }

// Log starts a structured line. It returns nil, on which every zerolog
// method is a no-op, when the facility is disabled or reaches no enabled
// output, so a disabled facility costs one atomic load. Finish the line
// with Msg, Msgf or Send.
func (f *Facility) Log() *zerolog.Event {
	if !f.live.Load() {
		return nil
	}
	return f.event()
}

func (f *Facility) event() *zerolog.Event {
	e := f.zl.Log()
	var b [40]byte
	e.RawJSON(fieldTime, appendTime(b[:0], f.g.now()))
	if f.debug.Load() {
		// Skip event and its caller within this package (Log, Printf,
		// Write or a LineWriter method).
		if _, file, line, ok := runtime.Caller(2); ok {
			var cb [128]byte
			c := append(cb[:0], filepath.Base(filepath.Dir(file))...)
			c = append(c, '/')
			c = append(c, filepath.Base(file)...)
			c = append(c, ':')
			c = strconv.AppendInt(c, int64(line), 10)
			e.Bytes(fieldCaller, c)
		}
	}
	return e
}

// Printf logs a formatted message. Its arguments are evaluated (and may
// allocate) even when the facility is disabled: use Log on hot paths.
func (f *Facility) Printf(format string, args ...any) {
	if !f.live.Load() {
		return
	}
	f.event().Msgf(format, args...)
}

// Write logs p as the message of one line, without a trailing newline.
// It lets a Facility stand where an io.Writer of whole lines is wanted;
// use LineWriter to split a stream into lines.
func (f *Facility) Write(p []byte) (int, error) {
	if f.live.Load() {
		line := p
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		f.event().Bytes("message", line).Send()
	}
	return len(p), nil
}

func newLogger(f *Facility) zerolog.Logger {
	return zerolog.New(dispatcher{f}).With().Str(fieldFacility, f.name).Logger()
}

// dispatcher is the zerolog writer of a facility: it hands each finished
// line to the outputs on the facility's route.
type dispatcher struct{ f *Facility }

var plainPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (d dispatcher) Write(p []byte) (int, error) {
	rt := d.f.route.Load()
	if rt == nil {
		return len(p), nil
	}
	if LineHook.Invoke(Record{Facility: d.f.name, JSON: p}) == hook.Abort {
		return len(p), nil
	}
	if trace.IsEnabled() {
		// libmtev's log probe: while an execution trace is taken, each
		// line written is a region "log" noting its facility.
		ctx := context.Background()
		defer trace.StartRegion(ctx, "log").End()
		trace.Log(ctx, "facility", d.f.name)
	}
	var plain *[]byte
	for _, n := range *rt {
		line := p
		if n.format == FormatPlain {
			if plain == nil {
				plain = plainPool.Get().(*[]byte)
				*plain = renderPlain((*plain)[:0], p)
			}
			line = *plain
		}
		n.write(line)
	}
	if plain != nil {
		if cap(*plain) <= 64<<10 {
			plainPool.Put(plain)
		}
	}
	return len(p), nil
}

// Facility returns the facility named name, creating it if needed. A new
// facility is enabled and forwards to its implicit parent, the name up to
// its last '/', itself created the same way; a new top-level facility
// forwards nowhere until connected. Facility panics on an invalid name
// (empty, or with an empty '/'-separated part), a programming error.
func (g *Graph) Facility(name string) *Facility {
	if err := checkName(name); err != nil {
		panic(err.Error())
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.facs[name]; ok {
		return f
	}
	f := g.createLocked(name, true)
	g.recompileLocked()
	return f
}

// Lookup returns the facility named name, if it exists.
func (g *Graph) Lookup(name string) (*Facility, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.facs[name]
	return f, ok
}

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("log: facility name is empty: %w", ErrInvalid)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" {
			return fmt.Errorf("log: facility name %q has an empty part: %w", name, ErrInvalid)
		}
	}
	return nil
}

// createLocked creates facility name (which must not exist). With implicit
// set it connects the facility to its implicit parent, creating that too.
func (g *Graph) createLocked(name string, implicit bool) *Facility {
	f := &Facility{g: g, name: name, enabled: true}
	f.zl = newLogger(f)
	g.facs[name] = f
	if i := strings.LastIndexByte(name, '/'); implicit && i > 0 {
		parent, ok := g.facs[name[:i]]
		if !ok {
			parent = g.createLocked(name[:i], true)
		}
		f.outlets = append(f.outlets, parent)
	}
	return f
}

// Connect makes facility from forward its lines to facility to. Both must
// exist. It returns an error wrapping ErrCycle if to already reaches from.
func (g *Graph) Connect(from, to string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return fmt.Errorf("log: connect %s -> %s: %w", from, to, ErrClosed)
	}
	ff, ok := g.facs[from]
	if !ok {
		return fmt.Errorf("log: connect %s -> %s: %q: %w", from, to, from, ErrUnknownFacility)
	}
	tf, ok := g.facs[to]
	if !ok {
		return fmt.Errorf("log: connect %s -> %s: %q: %w", from, to, to, ErrUnknownFacility)
	}
	for _, o := range ff.outlets {
		if o == tf {
			return nil
		}
	}
	if reaches(tf, ff, nil) {
		return fmt.Errorf("log: connect %s -> %s: %w", from, to, ErrCycle)
	}
	ff.outlets = append(ff.outlets, tf)
	g.recompileLocked()
	return nil
}

// Disconnect removes the edge from -> to, if present.
func (g *Graph) Disconnect(from, to string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	ff, ok := g.facs[from]
	if !ok {
		return fmt.Errorf("log: disconnect %s -> %s: %q: %w", from, to, from, ErrUnknownFacility)
	}
	for i, o := range ff.outlets {
		if o.name == to {
			ff.outlets = append(ff.outlets[:i:i], ff.outlets[i+1:]...)
			break
		}
	}
	g.recompileLocked()
	return nil
}

// reaches reports whether target is reachable from f. override, when not
// nil, replaces the outlets of the facilities it names.
func reaches(f, target *Facility, override map[*Facility][]*Facility) bool {
	seen := map[*Facility]bool{}
	var visit func(*Facility) bool
	visit = func(n *Facility) bool {
		if n == target {
			return true
		}
		if seen[n] {
			return false
		}
		seen[n] = true
		outs := n.outlets
		if o, ok := override[n]; ok {
			outs = o
		}
		for _, o := range outs {
			if visit(o) {
				return true
			}
		}
		return false
	}
	return visit(f)
}

// SetEnabled enables or disables facility name. A disabled facility
// neither writes its own output nor forwards, whether a line starts at it
// or reaches it from another facility.
func (g *Graph) SetEnabled(name string, on bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.facs[name]
	if !ok {
		return fmt.Errorf("log: set enabled %q: %w", name, ErrUnknownFacility)
	}
	f.enabled = on
	g.recompileLocked()
	return nil
}

// SetDebug turns on or off the caller file:line on lines logged through
// facility name.
func (g *Graph) SetDebug(name string, on bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.facs[name]
	if !ok {
		return fmt.Errorf("log: set debug %q: %w", name, ErrUnknownFacility)
	}
	f.debug.Store(on)
	return nil
}

// recompileLocked recomputes every facility's route: the deduplicated
// outputs reachable through enabled facilities, in depth-first order.
func (g *Graph) recompileLocked() {
	for _, f := range g.facs {
		var rt []*node
		if f.enabled && !g.closed {
			seen := map[*Facility]bool{}
			var visit func(*Facility)
			visit = func(n *Facility) {
				if seen[n] || !n.enabled {
					return
				}
				seen[n] = true
				if n.node != nil {
					rt = append(rt, n.node)
				}
				for _, o := range n.outlets {
					visit(o)
				}
			}
			visit(f)
		}
		if len(rt) == 0 {
			f.route.Store(nil)
			f.live.Store(false)
			continue
		}
		f.route.Store(&rt)
		f.live.Store(true)
	}
}

// Sink returns the output of facility name, or nil if it has none. Use a
// type assertion to reach type-specific methods, e.g. (*Ring).Since.
func (g *Graph) Sink(name string) Sink {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.facs[name]; ok && f.node != nil {
		return f.node.sink
	}
	return nil
}

// Stats describes one facility.
type Stats struct {
	Name    string
	Type    string // empty for a forwarding-only facility
	Enabled bool
	Debug   bool
	Live    bool // enabled and reaching at least one enabled output
	Outlets []string
	// The remaining fields concern the facility's own output.
	Format     string
	Async      bool
	Overflow   string
	Lines      uint64 // lines written to the output
	Dropped    uint64 // lines discarded by the Drop policy or after Close
	Errors     uint64 // failed writes
	LastError  string
	QueueBytes int // bytes waiting in the asynchronous queue
}

// Stats returns every facility's state, sorted by name.
func (g *Graph) Stats() []Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Stats, 0, len(g.facs))
	for _, f := range g.facs {
		s := Stats{Name: f.name, Enabled: f.enabled, Debug: f.debug.Load(), Live: f.live.Load()}
		for _, o := range f.outlets {
			s.Outlets = append(s.Outlets, o.name)
		}
		if n := f.node; n != nil {
			n.stats(&s)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Flush waits until every line logged before the call has been handed to
// its output, and flushes buffered outputs.
func (g *Graph) Flush() error {
	var errs []error
	for _, n := range g.nodes() {
		if err := n.flush(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Reopen reopens every output that supports it (files), for use after an
// external tool has renamed them. Lines queued before the call go to the
// old file.
func (g *Graph) Reopen() error {
	var errs []error
	for _, n := range g.nodes() {
		if err := n.reopen(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (g *Graph) nodes() []*node {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ns []*node
	for _, f := range g.facs {
		if f.node != nil {
			ns = append(ns, f.node)
		}
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i].name < ns[j].name })
	return ns
}

// Close disables every facility, drains asynchronous queues, and closes
// every output. Lines logged during or after Close are counted as dropped.
// Close is idempotent.
func (g *Graph) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.recompileLocked()
	g.mu.Unlock()
	var errs []error
	for _, n := range g.nodes() {
		if err := n.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
