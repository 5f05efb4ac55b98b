package hook

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// ErrNoPoint is returned by AttachJSON for a hook point name that no
// package declared.
var ErrNoPoint = errors.New("no such hook point")

// Result is what a hook function returns.
type Result int

const (
	// Continue lets the chain and the caller go on as if nothing was
	// attached.
	Continue Result = iota
	// Done says the function handled the event; later functions still
	// run, and Invoke returns Done unless one of them aborts.
	Done
	// Abort stops the chain at once; the caller refuses or drops what the
	// hook point is about.
	Abort
)

// String returns libmtev's spelling: CONTINUE, DONE or ABORT.
func (r Result) String() string {
	switch r {
	case Continue:
		return "CONTINUE"
	case Done:
		return "DONE"
	case Abort:
		return "ABORT"
	}
	return "UNKNOWN"
}

// Func is a function attached to a hook point carrying values of type T.
type Func[T any] func(T) Result

type entry[T any] struct {
	name string
	fn   Func[T]
}

// Point is a hook point carrying a value of type T. Its zero value is not
// usable; create points with New.
type Point[T any] struct {
	name, doc string
	view      func(T) any                // set by Describe at declaration
	mu        sync.Mutex                 // serialises Register
	chain     atomic.Pointer[[]entry[T]] // newest first; never mutated once stored
}

// New declares a hook point. Its name is what Points lists (libmtev's
// names where the point is libmtev's, e.g. "http_request_log"); a second
// point with the same name is listed twice, so names should be unique.
func New[T any](name, doc string) *Point[T] {
	p := &Point[T]{name: name, doc: doc}
	registry.add(p)
	return p
}

// Register attaches fn under a name (shown by Points). It runs before
// every function registered earlier. A nil fn is ignored.
func (p *Point[T]) Register(name string, fn Func[T]) {
	if fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var old []entry[T]
	if c := p.chain.Load(); c != nil {
		old = *c
	}
	next := make([]entry[T], 0, len(old)+1)
	next = append(next, entry[T]{name: name, fn: fn})
	next = append(next, old...)
	p.chain.Store(&next)
}

// Invoke runs the attached functions, newest first, with v, and returns
// Abort at the first Abort, else Done if any returned Done, else Continue.
func (p *Point[T]) Invoke(v T) Result {
	c := p.chain.Load()
	if c == nil {
		return Continue
	}
	res := Continue
	for _, e := range *c {
		switch e.fn(v) {
		case Abort:
			return Abort
		case Done:
			res = Done
		}
	}
	return res
}

// Exists says whether anything is attached, so a caller can skip
// building an expensive argument.
func (p *Point[T]) Exists() bool {
	c := p.chain.Load()
	return c != nil && len(*c) > 0
}

// Name returns the point's name.
func (p *Point[T]) Name() string { return p.name }

// Describe sets the JSON view of the point's values that functions
// attached by name (AttachJSON) receive, for a T that does not marshal
// usefully (a *Config, a net.Conn). Without it the value itself is
// marshaled. Call it where the point is declared, before any AttachJSON.
func (p *Point[T]) Describe(view func(T) any) *Point[T] {
	p.view = view
	return p
}

// attachJSON registers a function that receives each value marshaled to
// JSON. A value that does not marshal reaches fn as a JSON string holding
// the marshaling error, so fn still runs.
func (p *Point[T]) attachJSON(name string, fn func([]byte) Result) {
	p.Register(name, func(v T) Result {
		var x any = v
		if p.view != nil {
			x = p.view(v)
		}
		b, err := json.Marshal(x)
		if err != nil {
			b, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		return fn(b)
	})
}

// AttachJSON attaches fn under name to every hook point called point,
// with each value marshaled to JSON (see Describe). It is how code that
// does not know a point's Go type attaches to it: a module in another
// process, a script. It fails with ErrNoPoint when no point of that name
// was declared.
func AttachJSON(point, name string, fn func(value []byte) Result) error {
	registry.mu.Lock()
	ps := slices.Clone(registry.points)
	registry.mu.Unlock()
	found := false
	for _, p := range ps {
		if p.info().Name == point {
			p.attachJSON(name, fn)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("hook: attach %s to %s: %w", name, point, ErrNoPoint)
	}
	return nil
}

// Info describes a hook point for listings.
type Info struct {
	Name     string   `json:"name"`
	Doc      string   `json:"doc,omitempty"`
	Attached []string `json:"attached"` // newest (first to run) first
}

func (p *Point[T]) info() Info {
	in := Info{Name: p.name, Doc: p.doc, Attached: []string{}}
	if c := p.chain.Load(); c != nil {
		for _, e := range *c {
			in.Attached = append(in.Attached, e.name)
		}
	}
	return in
}

type lister interface {
	info() Info
	attachJSON(name string, fn func([]byte) Result)
}

type pointRegistry struct {
	mu     sync.Mutex
	points []lister
}

var registry pointRegistry

func (r *pointRegistry) add(p lister) {
	r.mu.Lock()
	r.points = append(r.points, p)
	r.mu.Unlock()
}

// Points lists every hook point declared in this process, sorted by name,
// each with the names of the functions attached to it in the order they
// run.
func Points() []Info {
	registry.mu.Lock()
	ps := slices.Clone(registry.points)
	registry.mu.Unlock()
	out := make([]Info, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.info())
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
