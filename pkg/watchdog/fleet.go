package watchdog

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A Fleet runs several services in one process, each with its own
// Supervisor (restart policy, journal records under its name, control
// socket, notify socket, heart table and containment guard), in the order
// their dependencies give: a service starts once every service it depends
// on is ready, and stops before them.
//
// Semantics (systemd's Requires= with After=, see docs/up.md):
//
//   - A dependency is ready once its child declared READY=1 (Notify), or
//     its first heart beat (HeartsRequire); otherwise once started. A
//     dependency whose child dies is not ready again until its next child
//     is; dependents already running are left alone.
//   - A dependency that gives up (crash-loop limit) or cannot start leaves
//     its running dependents running; dependents not started yet wait.
//   - Stop of one service stops its dependents first; Start of one starts
//     the dependencies it needs first. Restart of one restarts only it.
//   - One service ending does not end the others, except the Primary,
//     whose end ends the Fleet (a linked app and its <managed> sidecars).
//
// All Fleet state is guarded by one mutex, taken after a Supervisor's
// event lock (the Events hook updates it) and never held while a
// Supervisor is called. Operations (Start, Stop, Restart, Update, the
// shutdown) are serialized by a second mutex, taken first.
type Fleet struct {
	opts FleetOptions

	opMu sync.Mutex // serializes operations; taken before mu

	mu      sync.Mutex
	svcs    map[string]*fleetService
	order   []string      // every service, dependencies first
	changed chan struct{} // closed and replaced on every state change
	closing bool          // Serve is stopping everything
	serving bool
	wg      sync.WaitGroup // the service runners
	primary chan error     // the Primary's end
}

// ServiceSpec is one service of a Fleet.
type ServiceSpec struct {
	Config  Config
	Options Options
	// Depends names the services this one starts after (and stops before).
	Depends []string
	// Pos says where the service is defined ("file:line"); errors name it.
	Pos string
	// Key holds settings outside Config (the output format, say) whose
	// change restarts the service on Update.
	Key string
}

// FleetOptions configure a Fleet.
type FleetOptions struct {
	// Name names the Fleet's control socket, FleetSocketPath(StateDir,
	// Name); with an empty Name there is none.
	Name     string
	StateDir string
	// Primary names the service whose end ends the Fleet; Serve returns
	// what its Supervisor returned. Empty: none.
	Primary string
	// Notice receives what the Fleet itself does (a service waits for a
	// dependency, was stopped, ended); it must not block.
	Notice func(service, text string)
	// Reload, when set, is what the control socket's "reload" op calls.
	Reload func() error
}

// fleetService is one generation of a service: Update replaces a changed
// service with a new one, so that a runner only ever updates its own.
type fleetService struct {
	spec      ServiceSpec
	wanted    bool          // false once stopped on request
	active    bool          // a runner runs
	waiting   bool          // the runner waits for dependencies
	cancel    func()        // ends the runner
	done      chan struct{} // closed when the runner returned
	sup       *Supervisor
	pid       int
	ready     bool
	starts    int // children started, over every Supervisor of the service
	base      int // starts before the current Supervisor
	incident  string
	ended     error // what the last Supervisor's Serve returned
	endedOnce bool
}

// ServiceStatus is one line of a Fleet's status.
type ServiceStatus struct {
	Service string `json:"service"`
	// State: waiting (for dependencies), running, ready, stopping,
	// backoff, stopped (on request), exited (its policy did not restart
	// it), gave-up (crash-loop or same-crash limit) or failed (cannot
	// start).
	State        string      `json:"state"`
	PID          int         `json:"pid,omitempty"`
	Starts       int         `json:"starts"`
	LastIncident string      `json:"last_incident,omitempty"`
	Depends      []string    `json:"depends,omitempty"`
	WaitingFor   []string    `json:"waiting_for,omitempty"`
	Error        string      `json:"error,omitempty"`
	Detail       *StatusInfo `json:"detail,omitempty"`
}

// ErrUnknownService: an operation named a service the Fleet does not run.
var ErrUnknownService = errors.New("watchdog: no such service")

// NewFleet checks the specs (names, dependencies, each Config) and returns
// a Fleet. It starts nothing.
func NewFleet(specs []ServiceSpec, opts FleetOptions) (*Fleet, error) {
	order, err := checkSpecs(specs)
	if err != nil {
		return nil, err
	}
	if opts.Primary != "" && !slices.ContainsFunc(specs, func(s ServiceSpec) bool { return s.Config.Name == opts.Primary }) {
		return nil, fmt.Errorf("%w: primary service %q is not in the fleet", ErrConfig, opts.Primary)
	}
	f := &Fleet{opts: opts, svcs: map[string]*fleetService{}, changed: make(chan struct{}), primary: make(chan error, 1)}
	for _, s := range specs {
		s.Config = s.Config.withDefaults()
		f.svcs[s.Config.Name] = &fleetService{spec: s, wanted: true}
	}
	f.order = order
	return f, nil
}

// checkSpecs reports every problem of specs, each naming its position,
// and returns the names in start order.
func checkSpecs(specs []ServiceSpec) ([]string, error) {
	var errs []error
	bad := func(pos, format string, args ...any) {
		if pos != "" {
			pos += ": "
		}
		errs = append(errs, fmt.Errorf("%w: %s%s", ErrConfig, pos, fmt.Sprintf(format, args...)))
	}
	byName := map[string]ServiceSpec{}
	var names []string
	for _, s := range specs {
		c := s.Config.withDefaults()
		if c.Name == "" {
			bad(s.Pos, "service without a name")
			continue
		}
		if first, dup := byName[c.Name]; dup {
			bad(s.Pos, "duplicate service %q (first at %s)", c.Name, first.Pos)
			continue
		}
		if err := c.validate(); err != nil {
			for _, e := range unjoin(err) {
				bad(s.Pos, "service %q: %s", c.Name, strings.TrimPrefix(e.Error(), ErrConfig.Error()+": "))
			}
		}
		byName[c.Name] = s
		names = append(names, c.Name)
	}
	for _, n := range names {
		s := byName[n]
		for _, d := range s.Depends {
			switch _, ok := byName[d]; {
			case d == n:
				bad(s.Pos, "service %q depends on itself", n)
			case !ok:
				bad(s.Pos, "service %q depends on unknown service %q", n, d)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Depth-first, dependencies first; a service met again while on the
	// path closes a cycle.
	var order []string
	state := map[string]int{} // 1: on the path, 2: done
	var path []string
	var visit func(n string) error
	visit = func(n string) error {
		switch state[n] {
		case 1:
			i := slices.Index(path, n)
			cyc := append(slices.Clone(path[i:]), n)
			return fmt.Errorf("%w: %s: dependency cycle: %s", ErrConfig, byName[n].Pos, strings.Join(cyc, " -> "))
		case 2:
			return nil
		}
		state[n] = 1
		path = append(path, n)
		for _, d := range byName[n].Depends {
			if err := visit(d); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// hasReadiness says whether a service signals readiness, so that its
// dependents wait for the signal rather than for the start.
func hasReadiness(c Config) bool {
	return c.Notify || c.Hearts == HeartsRequire || c.StartupProbe.Target != ""
}

// Serve starts every service, dependencies first, and runs them until ctx
// is done (then it stops them all, dependents first, and returns nil) or
// the Primary ends (then it stops the others and returns what the
// Primary's Supervisor returned). It returns only once no child of any
// service is alive.
func (f *Fleet) Serve(ctx context.Context) error {
	f.mu.Lock()
	if f.serving {
		f.mu.Unlock()
		return errors.New("watchdog: fleet: Serve called twice")
	}
	f.serving = true
	f.mu.Unlock()
	var ctl *fleetControl
	if f.opts.Name != "" {
		c, err := listenFleet(FleetSocketPath(f.opts.StateDir, f.opts.Name))
		if err != nil {
			return err
		}
		ctl = c
		ctl.wg.Add(1)
		go func() {
			defer ctl.wg.Done()
			ctl.serve(f)
		}()
	}
	f.opMu.Lock()
	f.mu.Lock()
	for _, n := range f.order {
		f.launch(f.svcs[n])
	}
	f.mu.Unlock()
	f.opMu.Unlock()
	sd := f.startSystemd()

	var err error
	select {
	case <-ctx.Done():
	case err = <-f.primary:
	}
	f.opMu.Lock()
	f.mu.Lock()
	f.closing = true
	order := slices.Clone(f.order)
	f.mu.Unlock()
	f.stopAll(order)
	f.opMu.Unlock()
	if ctl != nil {
		ctl.close()
	}
	f.wg.Wait()
	sd.close()
	return err
}

// launch starts a runner for s. Called with mu held.
func (f *Fleet) launch(s *fleetService) {
	if s.active {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.active, s.waiting, s.wanted = true, true, true
	s.cancel, s.done = cancel, make(chan struct{})
	s.ended, s.endedOnce = nil, false
	f.bump()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(s.done)
		f.run(ctx, s)
	}()
}

// bump tells waiters that something changed. Called with mu held.
func (f *Fleet) bump() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *Fleet) notice(service, format string, args ...any) {
	if f.opts.Notice != nil {
		f.opts.Notice(service, fmt.Sprintf(format, args...))
	}
}

// unready returns the dependencies of s that are not ready. Called with
// mu held.
func (f *Fleet) unready(s *fleetService) []string {
	var out []string
	for _, d := range s.spec.Depends {
		if ds := f.svcs[d]; ds == nil || !ds.ready {
			out = append(out, d)
		}
	}
	return out
}

// run is the runner of one service generation: it waits for the
// dependencies, then serves the service's Supervisor until ctx is done or
// the Supervisor ends.
func (f *Fleet) run(ctx context.Context, s *fleetService) {
	name := s.spec.Config.Name
	told := ""
	for {
		f.mu.Lock()
		wait := f.unready(s)
		ch := f.changed
		if len(wait) == 0 {
			s.waiting = false
		}
		f.mu.Unlock()
		if len(wait) == 0 {
			break
		}
		if w := strings.Join(wait, ", "); w != told {
			f.notice(name, "waiting for %s to be ready", w)
			told = w
		}
		select {
		case <-ch:
		case <-ctx.Done():
			f.finish(s, nil)
			return
		}
	}
	opts := s.spec.Options
	inner := opts.Events
	opts.Events = func(e Event) {
		f.observe(s, e)
		if inner != nil {
			inner(e)
		}
	}
	cfg := s.spec.Config
	if name != f.opts.Primary {
		// Only the Primary speaks to systemd for itself; the Fleet
		// speaks for a set without one (fleet_systemd.go).
		cfg.NoSystemd = true
	}
	sup, err := New(cfg, opts)
	if err != nil {
		f.finish(s, err)
		return
	}
	f.mu.Lock()
	s.sup, s.base = sup, s.starts
	f.mu.Unlock()
	var pollDone chan struct{}
	if s.spec.Config.Hearts == HeartsRequire && !s.spec.Config.Notify && s.spec.Config.StartupProbe.Target == "" {
		pollDone = make(chan struct{})
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.pollHearts(s, sup, pollDone)
		}()
	}
	err = sup.Serve(ctx)
	if pollDone != nil {
		close(pollDone)
	}
	f.finish(s, err)
}

// pollHearts marks a HeartsRequire service ready once a heart of its
// current child has beaten (the supervisor has no event for it).
func (f *Fleet) pollHearts(s *fleetService, sup *Supervisor, done chan struct{}) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		f.mu.Lock()
		need := s.pid != 0 && !s.ready
		f.mu.Unlock()
		if !need {
			continue
		}
		st, err := sup.Status()
		if err != nil {
			continue
		}
		for _, h := range st.Hearts {
			if h.Beats > 0 {
				f.mu.Lock()
				if s.pid == st.PID {
					s.ready = true
					f.bump()
				}
				f.mu.Unlock()
				break
			}
		}
	}
}

// finish records the end of a runner.
func (f *Fleet) finish(s *fleetService, err error) {
	name := s.spec.Config.Name
	f.mu.Lock()
	s.active, s.waiting, s.sup, s.pid, s.ready = false, false, nil, 0, false
	s.ended, s.endedOnce = err, s.wanted
	wanted := s.wanted
	primary := name == f.opts.Primary && !f.closing
	f.bump()
	f.mu.Unlock()
	switch {
	case !wanted:
		f.notice(name, "stopped")
	case err == nil:
		f.notice(name, "ended: its restart policy does not restart it (start it with: mtev-supervise start %s)", name)
	default:
		f.notice(name, "ended: %v; the other services keep running", err)
	}
	if primary {
		select {
		case f.primary <- err:
		default: // Serve has its answer already
		}
	}
}

// observe follows a service's Supervisor events.
func (f *Fleet) observe(s *fleetService, e Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch e := e.(type) {
	case Started:
		s.pid, s.ready = e.PID, !hasReadiness(s.spec.Config)
		s.starts = s.base + e.StartCount
	case Ready:
		if e.PID == s.pid {
			s.ready = true
		}
	case Exited:
		if e.PID == s.pid {
			s.pid, s.ready = 0, false
		}
	case Recorded:
		s.incident = e.Record.ID
		return
	default:
		return
	}
	f.bump()
}

// stopOne ends the runner of name, if one runs, and waits for it. Called
// with opMu held.
func (f *Fleet) stopOne(name string) {
	f.mu.Lock()
	s := f.svcs[name]
	if s == nil {
		f.mu.Unlock()
		return
	}
	s.wanted = false
	cancel, done, active := s.cancel, s.done, s.active
	f.mu.Unlock()
	if active {
		cancel()
		<-done
	}
}

// stopAll stops the services named, in waves: at once every one that
// no other service of the set depends on, then the next. Called with
// opMu held.
func (f *Fleet) stopAll(names []string) {
	left := slices.Clone(names)
	for len(left) > 0 {
		f.mu.Lock()
		var wave, rest []string
		for _, n := range left {
			needed := slices.ContainsFunc(left, func(m string) bool {
				s := f.svcs[m]
				return m != n && s != nil && slices.Contains(s.spec.Depends, n)
			})
			if needed {
				rest = append(rest, n)
			} else {
				wave = append(wave, n)
			}
		}
		f.mu.Unlock()
		if len(wave) == 0 { // not reached: the graph has no cycle
			wave, rest = rest, nil
		}
		var wg sync.WaitGroup
		for _, n := range wave {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.stopOne(n)
			}()
		}
		wg.Wait()
		left = rest
	}
}

// dependents returns name and every service that depends on it, directly
// or not, in start order.
func (f *Fleet) dependents(name string) []string {
	in := map[string]bool{name: true}
	for changed := true; changed; {
		changed = false
		for _, n := range f.order {
			if in[n] {
				continue
			}
			for _, d := range f.svcs[n].spec.Depends {
				if in[d] {
					in[n], changed = true, true
					break
				}
			}
		}
	}
	return slices.DeleteFunc(slices.Clone(f.order), func(n string) bool { return !in[n] })
}

// dependencies returns name and everything it depends on, directly or
// not, in start order.
func (f *Fleet) dependencies(name string) []string {
	in := map[string]bool{}
	var add func(string)
	add = func(n string) {
		if in[n] {
			return
		}
		in[n] = true
		for _, d := range f.svcs[n].spec.Depends {
			add(d)
		}
	}
	add(name)
	return slices.DeleteFunc(slices.Clone(f.order), func(n string) bool { return !in[n] })
}

// names resolves an operation's target: one service, or all of them
// when name is empty.
func (f *Fleet) names(name string) ([]string, error) {
	if f.closing || !f.serving {
		return nil, ErrNotRunning
	}
	if name == "" {
		return slices.Clone(f.order), nil
	}
	if f.svcs[name] == nil {
		return nil, fmt.Errorf("%w %q (services: %s)", ErrUnknownService, name, strings.Join(f.order, ", "))
	}
	return []string{name}, nil
}

// Stop stops one service (and first the services that depend on it), or
// every service when name is empty, dependents first (services that do
// not depend on each other at once), and waits until their children are
// gone. They stay stopped until Start.
func (f *Fleet) Stop(name string) error {
	f.opMu.Lock()
	defer f.opMu.Unlock()
	f.mu.Lock()
	names, err := f.names(name)
	if err == nil && name != "" {
		names = f.dependents(name)
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	f.stopAll(names)
	return nil
}

// Start starts one service (and first the services it depends on that do
// not run), or every service when name is empty. It returns once their
// runners are launched: a service then waits for its dependencies.
func (f *Fleet) Start(name string) error {
	f.opMu.Lock()
	defer f.opMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	names, err := f.names(name)
	if err != nil {
		return err
	}
	if name != "" {
		names = f.dependencies(name)
	}
	for _, n := range names {
		f.launch(f.svcs[n])
	}
	return nil
}

// Restart restarts the child of one service, or of every running service
// when name is empty, without backoff; a service named that does not run
// is started (with its dependencies).
func (f *Fleet) Restart(name string) error {
	f.opMu.Lock()
	defer f.opMu.Unlock()
	f.mu.Lock()
	names, err := f.names(name)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	var sups []*Supervisor
	for _, n := range names {
		s := f.svcs[n]
		switch {
		case s.sup != nil:
			sups = append(sups, s.sup)
		case !s.active && name != "":
			for _, d := range f.dependencies(n) {
				f.launch(f.svcs[d])
			}
		}
	}
	f.mu.Unlock()
	for _, sup := range sups {
		if err := sup.Restart(); err != nil && !errors.Is(err, ErrNotRunning) {
			return err
		}
	}
	return nil
}

// Signal sends sig to the main process of the running child of one
// service, or of every service when name is empty.
func (f *Fleet) Signal(name string, sig syscall.Signal) {
	f.mu.Lock()
	var sups []*Supervisor
	for _, n := range f.order {
		if s := f.svcs[n]; s.sup != nil && s.pid != 0 && (name == "" || name == n) {
			sups = append(sups, s.sup)
		}
	}
	f.mu.Unlock()
	for _, sup := range sups {
		sup.Signal(sig)
	}
}

// Status lists every service, in start order (before Serve and after
// it returned too: then they are all stopped).
func (f *Fleet) Status() ([]ServiceStatus, error) {
	f.mu.Lock()
	out := make([]ServiceStatus, 0, len(f.order))
	sups := make([]*Supervisor, 0, len(f.order))
	bases := make([]int, 0, len(f.order))
	for _, n := range f.order {
		s := f.svcs[n]
		st := ServiceStatus{Service: n, PID: s.pid, Starts: s.starts, LastIncident: s.incident, Depends: s.spec.Depends}
		st.State = s.stateLocked()
		if st.State == "waiting" {
			st.WaitingFor = f.unready(s)
		}
		if s.ended != nil && !s.active {
			st.Error = s.ended.Error()
		}
		out = append(out, st)
		sups = append(sups, s.sup)
		bases = append(bases, s.base)
	}
	f.mu.Unlock()
	for i, sup := range sups {
		if sup == nil || out[i].State == "waiting" {
			continue
		}
		if d, err := sup.Status(); err == nil {
			out[i].Detail = &d
			out[i].State = d.State
			out[i].PID = d.PID
			// The supervisor counts a start before its event is told.
			out[i].Starts = max(out[i].Starts, bases[i]+d.StartCount)
		}
	}
	return out, nil
}

// stateLocked is the service's state as the Fleet knows it: waiting,
// running, ready, stopped, exited, gave-up or failed. Called with mu held.
func (s *fleetService) stateLocked() string {
	switch {
	case s.active && s.waiting:
		return "waiting"
	case s.active && s.ready:
		return "ready"
	case s.active:
		return "running"
	case !s.wanted || !s.endedOnce:
		return "stopped"
	case s.ended == nil:
		return "exited"
	case errors.Is(s.ended, ErrCrashLoop), errors.Is(s.ended, ErrSameCrash):
		return "gave-up"
	}
	return "failed"
}

// Update replaces the specs: services that are new start, those removed
// stop, those whose Config or Key changed restart with the new one (a
// service stopped on request stays stopped), and the others are not
// touched (their dependencies are updated). Specs that do not check out
// change nothing.
func (f *Fleet) Update(specs []ServiceSpec) error {
	order, err := checkSpecs(specs)
	if err != nil {
		return err
	}
	f.opMu.Lock()
	defer f.opMu.Unlock()
	f.mu.Lock()
	if f.closing || !f.serving {
		f.mu.Unlock()
		return ErrNotRunning
	}
	next := map[string]ServiceSpec{}
	for _, s := range specs {
		s.Config = s.Config.withDefaults()
		next[s.Config.Name] = s
	}
	var stop, start []string
	for _, n := range f.order {
		s := f.svcs[n]
		ns, keep := next[n]
		switch {
		case !keep:
			stop = append(stop, n)
		case !reflect.DeepEqual(s.spec.Config, ns.Config) || s.spec.Key != ns.Key:
			stop = append(stop, n)
			if s.wanted {
				start = append(start, n)
			}
		}
	}
	for _, n := range order {
		if f.svcs[n] == nil {
			start = append(start, n)
		}
	}
	f.mu.Unlock()

	// Stop on the old graph, dependents first.
	f.stopAll(stop)
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.svcs
	f.svcs = map[string]*fleetService{}
	for _, n := range order {
		ns := next[n]
		if s := old[n]; s != nil && !slices.Contains(stop, n) {
			s.spec.Depends, s.spec.Pos = ns.Depends, ns.Pos
			f.svcs[n] = s
			continue
		}
		s := &fleetService{spec: ns, wanted: slices.Contains(start, n)}
		if s2 := old[n]; s2 != nil {
			s.starts, s.incident = s2.starts, s2.incident
		}
		f.svcs[n] = s
	}
	f.order = order
	f.bump()
	for _, n := range order {
		if slices.Contains(start, n) {
			f.launch(f.svcs[n])
		}
	}
	return nil
}
