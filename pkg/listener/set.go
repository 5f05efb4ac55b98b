package listener

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

// Options configure a Set.
type Options struct {
	// Router serves the HTTP listener types and lists the listeners in
	// its capabilities document.
	Router *rest.Router
	// DrainTimeout bounds a graceful stop of one listener on reload
	// (Shutdown takes its own context); zero means 10 s.
	DrainTimeout time.Duration
	// OnError receives a listener's Serve error after start (the socket
	// failed); it must not block. Nil: ignored.
	OnError func(spec *Spec, err error)
}

// Set runs the configured listeners: Start opens them all or none,
// Reload applies a new configuration (certificates replaced in place,
// changed listeners restarted, removed ones drained), Shutdown drains
// them all. Its methods are safe from any goroutine; Start, Reload and
// Shutdown are serialized.
type Set struct {
	opts    Options
	mu      sync.Mutex
	running map[string]*running
	order   []string
}

type running struct {
	spec *Spec
	ln   net.Listener
	srv  Server
	done chan struct{}
}

// Listening describes a running listener.
type Listening struct {
	Spec *Spec
	Addr net.Addr
}

// NewSet returns an empty set.
func NewSet(opts Options) *Set {
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	return &Set{opts: opts, running: map[string]*running{}}
}

// Start opens and serves specs. On any error the listeners this call
// opened are closed again and the error (naming file:line) returned.
func (s *Set) Start(specs []*Spec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	started, err := s.startLocked(specs)
	if err != nil {
		for _, r := range started {
			s.stopLocked(context.Background(), r)
		}
		return err
	}
	s.publishLocked()
	return nil
}

func (s *Set) build(spec *Spec) (Server, error) {
	f, ok := lookup(spec.Type)
	if !ok {
		return nil, fmt.Errorf("%s: listener %s: %w: unknown type %q", spec.Pos, spec.Key(), ErrConfig, spec.Type)
	}
	spec.Router = s.opts.Router
	srv, err := f(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: listener %s: %w: %w", spec.Pos, spec.Key(), ErrConfig, err)
	}
	return srv, nil
}

func (s *Set) startLocked(specs []*Spec) ([]*running, error) {
	var started []*running
	for _, spec := range specs {
		if _, dup := s.running[spec.Key()]; dup {
			return started, fmt.Errorf("%s: listener %s: %w: already running", spec.Pos, spec.Key(), ErrConfig)
		}
		srv, err := s.build(spec)
		if err != nil {
			return started, err
		}
		r, err := s.launch(spec, srv)
		if err != nil {
			return started, err
		}
		started = append(started, r)
	}
	return started, nil
}

func (s *Set) launch(spec *Spec, srv Server) (*running, error) {
	ln, err := open(spec)
	if err != nil {
		return nil, err
	}
	r := &running{spec: spec, ln: ln, srv: srv, done: make(chan struct{})}
	s.running[spec.Key()] = r
	s.order = append(s.order, spec.Key())
	wrapped := &hooked{Listener: ln, noDelay: spec.Config["no_delay"] != "false" && spec.Config["no_delay"] != "off"}
	go func() {
		defer close(r.done)
		if err := srv.Serve(wrapped); err != nil && !errors.Is(err, net.ErrClosed) && s.opts.OnError != nil {
			s.opts.OnError(spec, err)
		}
	}()
	return r, nil
}

func (s *Set) stopLocked(ctx context.Context, r *running) error {
	err := r.srv.Shutdown(ctx)
	r.ln.Close()
	<-r.done
	delete(s.running, r.spec.Key())
	for i, k := range s.order {
		if k == r.spec.Key() {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	return err
}

// Reload applies a new list of listeners. Every new or changed listener's
// server is built first: any error refuses the whole reload and nothing
// changes. Then listeners whose type, address, port, backlog, name and
// <config> are unchanged keep their socket and connections and take the
// new certificate; removed ones are drained and closed; changed ones are
// drained and reopened; new ones are opened.
func (s *Set) Reload(specs []*Spec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	type plan struct {
		spec *Spec
		srv  Server
		old  *running
	}
	var todo []plan
	keep := map[string]*Spec{}
	for _, spec := range specs {
		old := s.running[spec.Key()]
		if old != nil && sameShape(old.spec, spec) {
			keep[spec.Key()] = spec
			continue
		}
		srv, err := s.build(spec)
		if err != nil {
			return err
		}
		todo = append(todo, plan{spec: spec, srv: srv, old: old})
	}
	var errs []error
	for k, spec := range keep {
		old := s.running[k]
		if old.spec.TLS != nil && spec.TLS != nil {
			old.spec.TLS.Update(spec.TLS)
		}
	}
	want := map[string]bool{}
	for _, spec := range specs {
		want[spec.Key()] = true
	}
	for _, k := range append([]string(nil), s.order...) {
		if !want[k] {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout)
			_ = s.stopLocked(ctx, s.running[k])
			cancel()
		}
	}
	for _, p := range todo {
		if p.old != nil {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout)
			_ = s.stopLocked(ctx, p.old)
			cancel()
		}
		if _, err := s.launch(p.spec, p.srv); err != nil {
			errs = append(errs, err)
		}
	}
	s.publishLocked()
	return errors.Join(errs...)
}

func sameShape(a, b *Spec) bool {
	return a.Type == b.Type && a.Address == b.Address && a.Port == b.Port && a.Backlog == b.Backlog &&
		a.Name == b.Name && maps.Equal(a.Config, b.Config) && (a.TLS == nil) == (b.TLS == nil)
}

// Shutdown drains every listener until ctx ends, then closes them.
func (s *Set) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(s.order))
	rs := make([]*running, 0, len(s.order))
	for _, k := range s.order {
		rs = append(rs, s.running[k])
	}
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.srv.Shutdown(ctx)
			r.ln.Close()
			<-r.done
		}()
	}
	wg.Wait()
	s.running = map[string]*running{}
	s.order = nil
	s.publishLocked()
	return errors.Join(errs...)
}

// Listening lists the running listeners with their bound addresses.
func (s *Set) Listening() []Listening {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Listening, 0, len(s.order))
	for _, k := range s.order {
		r := s.running[k]
		out = append(out, Listening{Spec: r.spec, Addr: r.ln.Addr()})
	}
	return out
}

// Addr returns the address of the first running listener of the type,
// or nil.
func (s *Set) Addr(typ string) net.Addr {
	for _, l := range s.Listening() {
		if l.Spec.Type == typ {
			return l.Addr
		}
	}
	return nil
}

func (s *Set) publishLocked() {
	if s.opts.Router == nil {
		return
	}
	var svcs []rest.Service
	for _, k := range s.order {
		r := s.running[k]
		svc := rest.Service{Type: r.spec.Type, Address: r.ln.Addr().String()}
		if t, ok := r.ln.Addr().(*net.TCPAddr); ok {
			svc.Address, svc.Port = t.IP.String(), t.Port
		}
		switch r.spec.Type {
		case "control_dispatch":
			svc.Commands = dispatchCommands
		case "http_rest_api":
			svc.Commands = dispatchCommands[:len(dispatchCommands)-1]
		}
		svcs = append(svcs, svc)
	}
	sort.SliceStable(svcs, func(i, j int) bool { return strings.Compare(svcs[i].Type, svcs[j].Type) < 0 })
	s.opts.Router.SetServices(svcs)
}

// hooked runs the accept hook and TCP_NODELAY setting on each accepted
// connection.
type hooked struct {
	net.Listener
	noDelay bool
}

func (h *hooked) Accept() (net.Conn, error) {
	for {
		c, err := h.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if t, ok := c.(*net.TCPConn); ok && !h.noDelay {
			_ = t.SetNoDelay(false)
		}
		if Accept.Invoke(c) == hook.Abort {
			c.Close()
			continue
		}
		return c, nil
	}
}
