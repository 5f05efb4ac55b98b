package lua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	glua "github.com/yuin/gopher-lua"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

// DefaultMargin is how long before its loop's watchdog deadline a running
// Lua state is interrupted, as libmtev's 2 s.
const DefaultMargin = 2 * time.Second

// Sentinel errors. Errors returned by this package wrap them; test with
// errors.Is.
var (
	// ErrInterrupted: a Lua state ran past its deadline and was stopped.
	ErrInterrupted = errors.New("lua: interrupted")
	// ErrConfig: a module configuration key or value is wrong.
	ErrConfig = errors.New("lua: bad configuration")
	// ErrNoFunction: the module has no function of that name.
	ErrNoFunction = errors.New("lua: no such function")
	// ErrClosed: the state has been closed.
	ErrClosed = errors.New("lua: state closed")
)

// ExitError is what os.exit(n) raises: the script asked the process to
// exit with Code. Options.Exit, when set, receives the code first.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("lua: os.exit(%d)", e.Code) }

// InterruptError describes a resume stopped at its deadline. It wraps
// ErrInterrupted.
type InterruptError struct {
	Script   string        // the state's name (module or script)
	Where    string        // "file:line" of the instruction interrupted
	Elapsed  time.Duration // how long the resume had run
	Deadline time.Duration // the interrupt deadline
	Loop     string        // the loop that ran it
}

func (e *InterruptError) Error() string {
	w := e.Where
	if w == "" {
		w = e.Script
	}
	return fmt.Sprintf("lua: %s: interrupted after %v (deadline %v on loop %s, script %s)",
		w, e.Elapsed.Round(time.Millisecond), e.Deadline, e.Loop, e.Script)
}

func (e *InterruptError) Unwrap() error { return ErrInterrupted }

// Options configure a State.
type Options struct {
	// Name names the state in errors, logs and stalls: the module or script.
	Name string
	// Loop runs the state; required. Everything Lua does happens in this
	// loop's callbacks.
	Loop *eventer.Loop
	// Path is package.path: ';'-separated templates such as "/srv/lua/?.lua";
	// "{package.path}" in it stands for the default path. Empty: the default.
	Path string
	// Logs receives mtev.log and the state's errors; nil: a fresh graph.
	Logs *log.Graph
	// Config answers mtev.conf_get_*; nil: they return nil.
	Config *config.Config
	// Shared is the store of mtev.shared_get/shared_set; nil: the
	// process-wide one.
	Shared *Shared
	// Deadline interrupts a resume that runs this long. Zero: the loop
	// pool's heart timeout minus Margin (half the timeout when that would be
	// less than half); none when the pool has no timeout. Negative: never.
	Deadline time.Duration
	// Margin, zero meaning DefaultMargin.
	Margin time.Duration
	// OnStall receives each interruption; it must not block.
	OnStall func(Stall)
	// Heartbeat backs mtev.watchdog_child_heartbeat; nil: it returns false.
	Heartbeat func()
	// Stdout receives print() and mtev.log("stdout", ...) when no facility
	// "stdout" exists; nil: os.Stdout.
	Stdout io.Writer
	// Args is the script's global arg table: Args[0] is arg[0].
	Args []string
	// Exit receives os.exit(n) before the state raises *ExitError; nil: the
	// error alone ends the coroutine.
	Exit func(code int)
}

// State is one gopher-lua state bound to one event loop, running Lua
// functions as coroutines that yield to the loop (mtev.sleep, mtev.waitfor,
// socket and HTTP I/O) instead of blocking it. Apart from NewState, Post,
// Call and Close, its methods must be called on its loop.
type State struct {
	L    *glua.LState
	opts Options
	loop *eventer.Loop
	logs *log.Graph
	errs *log.Facility

	tasks     map[*glua.LState]*task
	waiters   map[string][]*task
	queued    map[string][][]glua.LValue // notifications nobody waited for yet
	current   *task
	socks     []*sock
	free      []*glua.LState // finished threads, for reuse
	preloaded bool
	require   *glua.LFunction
	handlers  map[string]*glua.LFunction // lua_web: module → handler
	nextID    int

	// Interrupt: a timer armed around each resume cancels the context
	// the VM checks between instructions. mu guards the fields below.
	deadline  time.Duration
	mu        sync.Mutex
	ctx       context.Context
	cancel    context.CancelFunc
	timer     *time.Timer
	running   bool
	fired     bool
	started   time.Time
	labels    context.Context            // pprof labels while Lua runs
	named     map[string]context.Context // the same for named tasks (loop only)
	unlabels  context.Context            // the loop's own labels
	closeOnce sync.Once
	closed    bool
}

// task is one scheduled coroutine.
type task struct {
	id      int
	co      *glua.LState
	fn      *glua.LFunction
	done    func([]glua.LValue, error)
	waiting bool           // a Go function arranged its wake-up
	timer   *eventer.Timer // sleep or waitfor timeout
	waitKey string
	tail    bool   // yielded from a tail call: the wake-up's values are the results
	name    string // what it runs, when not the state's name (a lua_web module)
}

// labelsFor returns the pprof labels of a resume running name.
func (s *State) labelsFor(name string) context.Context {
	if name == "" {
		return s.labels
	}
	if c, ok := s.named[name]; ok {
		return c
	}
	if s.named == nil {
		s.named = map[string]context.Context{}
	}
	c := pprof.WithLabels(s.unlabels, pprof.Labels("mtev.lua", name))
	s.named[name] = c
	return c
}

// NewState makes a state on opts.Loop with Lua's standard libraries and the
// mtev module (global "mtev", also require("mtev")).
func NewState(opts Options) (*State, error) {
	if opts.Loop == nil {
		return nil, fmt.Errorf("lua: new state %q: no loop", opts.Name)
	}
	if opts.Logs == nil {
		opts.Logs = log.New()
	}
	if opts.Shared == nil {
		opts.Shared = defaultShared
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Margin == 0 {
		opts.Margin = DefaultMargin
	}
	s := &State{
		// Coroutines are threads of their own: a small registry that
		// grows on demand keeps spawning one cheap.
		L: glua.NewState(glua.Options{
			RegistrySize:        256,
			RegistryMaxSize:     256 * 1024,
			RegistryGrowStep:    256,
			CallStackSize:       200,
			MinimizeStackMemory: true,
		}),
		opts:    opts,
		loop:    opts.Loop,
		logs:    opts.Logs,
		errs:    opts.Logs.Facility("error/lua"),
		tasks:   map[*glua.LState]*task{},
		waiters: map[string][]*task{},
		queued:  map[string][][]glua.LValue{},
	}
	s.deadline = interruptDeadline(opts.Deadline, opts.Loop.Pool().Timeout(), opts.Margin)
	if s.deadline > 0 {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.L.SetContext(s.ctx)
		s.timer = time.AfterFunc(time.Hour, s.fire)
		s.timer.Stop()
	}
	s.unlabels = pprof.WithLabels(context.Background(), pprof.Labels("eventer.loop", s.loop.Name()))
	s.labels = pprof.WithLabels(s.unlabels, pprof.Labels("mtev.lua", opts.Name))
	if err := s.setPath(opts.Path); err != nil {
		s.L.Close()
		return nil, err
	}
	s.openMtev()
	return s, nil
}

// interruptDeadline is the resume deadline for a loop whose heart times out
// after timeout: libmtev's timeout minus margin, but never less than half
// the timeout (libmtev's floor of 1 µs interrupts everything on a loop whose
// timeout is at most the margin).
func interruptDeadline(set, timeout, margin time.Duration) time.Duration {
	switch {
	case set < 0:
		return 0
	case set > 0:
		return set
	case timeout <= 0:
		return 0
	}
	d := timeout - margin
	if d < timeout/2 {
		d = timeout / 2
	}
	return d
}

// Deadline returns the interrupt deadline of each resume (0: none).
func (s *State) Deadline() time.Duration { return s.deadline }

// Loop returns the loop that runs the state.
func (s *State) Loop() *eventer.Loop { return s.loop }

// Name returns the state's name.
func (s *State) Name() string { return s.opts.Name }

func (s *State) setPath(p string) error {
	pkg, ok := s.L.GetGlobal("package").(*glua.LTable)
	if !ok {
		return fmt.Errorf("lua: %s: no package table", s.opts.Name)
	}
	if p != "" {
		def := glua.LVAsString(pkg.RawGetString("path"))
		pkg.RawSetString("path", glua.LString(strings.ReplaceAll(p, "{package.path}", def)))
	}
	return nil
}

// Post runs fn on the state's loop.
func (s *State) Post(fn func()) error {
	return s.loop.Post(func() {
		if s.closed {
			return
		}
		fn()
	})
}

// Close releases the state on its loop (at once when the loop has
// stopped). Coroutines still waiting never resume. Idempotent.
func (s *State) Close() {
	s.closeOnce.Do(func() {
		done := make(chan struct{})
		release := func() {
			defer close(done)
			s.closed = true
			for _, k := range s.socks {
				k.release()
			}
			for _, t := range s.tasks {
				if t.timer != nil {
					t.timer.Stop()
				}
			}
			if s.timer != nil {
				s.timer.Stop()
			}
			if s.cancel != nil {
				s.cancel()
			}
			s.L.Close()
		}
		if err := s.loop.Post(release); err != nil {
			release()
		}
		<-done
	})
}

// Call requires module, looks up function in it (or, for a script that
// defines globals, among the globals) and runs it in a new coroutine with
// args; done, optional, receives its results or error on the loop. Call may
// be called from any goroutine.
func (s *State) Call(module, function string, args []glua.LValue, done func([]glua.LValue, error)) error {
	if done == nil {
		done = func([]glua.LValue, error) {}
	}
	return s.Post(func() {
		s.Require(module, func(mod glua.LValue, err error) {
			if err != nil {
				done(nil, err)
				return
			}
			fn, err := s.Function(module, mod, function)
			if err != nil {
				done(nil, err)
				return
			}
			s.Spawn(fn, args, done)
		})
	})
}

// Require runs require(module) in a coroutine (under the interrupt
// deadline) and gives done its value. On the loop.
func (s *State) Require(module string, done func(glua.LValue, error)) {
	if s.require == nil {
		// A Lua function calls require: gopher-lua's module() looks for
		// a Lua caller, which a coroutine started on require lacks.
		fn, err := s.L.Load(strings.NewReader("return require((...))"), "=require")
		if err != nil {
			done(nil, fmt.Errorf("lua: %s: %w", s.opts.Name, err))
			return
		}
		s.require = fn
	}
	s.Spawn(s.require, []glua.LValue{glua.LString(module)}, func(v []glua.LValue, err error) {
		if err != nil {
			done(nil, fmt.Errorf("lua: require %s: %w", module, err))
			return
		}
		done(v[0], nil)
	})
}

// Function finds function in the value require returned for module, then in
// package.loaded[module], then among the globals. On the loop.
func (s *State) Function(module string, mod glua.LValue, function string) (*glua.LFunction, error) {
	look := []glua.LValue{mod}
	if pkg, ok := s.L.GetGlobal("package").(*glua.LTable); ok {
		if loaded, ok := pkg.RawGetString("loaded").(*glua.LTable); ok {
			look = append(look, loaded.RawGetString(module))
		}
	}
	for _, m := range look {
		if t, ok := m.(*glua.LTable); ok {
			if fn, ok := t.RawGetString(function).(*glua.LFunction); ok {
				return fn, nil
			}
		}
	}
	if fn, ok := s.L.GetGlobal(function).(*glua.LFunction); ok {
		return fn, nil
	}
	return nil, fmt.Errorf("%w: %s.%s", ErrNoFunction, module, function)
}

// Load compiles and runs a chunk of source named name in a coroutine (the
// chunk's return values go to done). On the loop.
func (s *State) Load(name, src string, done func([]glua.LValue, error)) {
	fn, err := s.L.Load(strings.NewReader(src), name)
	if err != nil {
		done(nil, fmt.Errorf("lua: %s", fileLine(err.Error())))
		return
	}
	s.Spawn(fn, nil, done)
}

// Spawn runs fn(args...) as a new coroutine, starting now; done, optional,
// receives its results or error on the loop when it ends. On the loop.
func (s *State) Spawn(fn *glua.LFunction, args []glua.LValue, done func([]glua.LValue, error)) {
	s.SpawnNamed("", fn, args, done)
}

// SpawnNamed is Spawn for a coroutine that runs name (a lua_web module)
// rather than the state's own script: an interruption names it, and so do
// the pprof labels while it runs.
func (s *State) SpawnNamed(name string, fn *glua.LFunction, args []glua.LValue, done func([]glua.LValue, error)) {
	if s.closed {
		if done != nil {
			done(nil, ErrClosed)
		}
		return
	}
	co := s.thread()
	s.nextID++
	t := &task{id: s.nextID, co: co, fn: fn, done: done, name: name}
	s.tasks[co] = t
	s.resume(t, args...)
}

// maxFree bounds the finished threads kept for reuse.
const maxFree = 64

// thread returns a coroutine thread: one that finished cleanly, or a new
// one. A thread costs a registry and a call stack; reusing them halves
// what a lua_web request allocates.
func (s *State) thread() *glua.LState {
	if n := len(s.free); n > 0 {
		co := s.free[n-1]
		s.free = s.free[:n-1]
		co.Dead = false
		return co
	}
	co, _ := s.L.NewThread()
	return co
}

// spawnLater queues a new coroutine behind the loop's pending callbacks:
// how Lua code spawns (a resume must not start inside another).
func (s *State) spawnLater(fn *glua.LFunction, args []glua.LValue) {
	co := s.thread()
	s.nextID++
	t := &task{id: s.nextID, co: co, fn: fn, waiting: true}
	s.tasks[co] = t
	s.wake(t, args...)
}

// wake resumes a waiting task from a fresh loop callback.
func (s *State) wake(t *task, args ...glua.LValue) {
	if err := s.Post(func() { s.resume(t, args...) }); err != nil {
		delete(s.tasks, t.co)
	}
}

// resume runs t until it yields or ends. On the loop, never nested.
func (s *State) resume(t *task, args ...glua.LValue) {
	if s.closed {
		return
	}
	if t.tail {
		// It yielded from a tail call (return mtev.sleep(1)): the
		// frame that would receive the values is gone, so they are the
		// coroutine's results.
		s.end(t, args, nil)
		return
	}
	t.waiting = false
	s.current = t
	if s.deadline > 0 {
		t.co.SetContext(s.arm())
	}
	pprof.SetGoroutineLabels(s.labelsFor(t.name))
	st, err, vals := s.L.Resume(t.co, t.fn, args...)
	pprof.SetGoroutineLabels(s.unlabels)
	var elapsed time.Duration
	var fired bool
	if s.deadline > 0 {
		elapsed, fired = s.disarm()
	}
	s.current = nil
	switch st {
	case glua.ResumeYield:
		if !t.waiting {
			// coroutine.yield() from the task's own body: give the
			// loop a turn and carry on.
			t.waiting = true
			s.wake(t, vals...)
		}
		return
	case glua.ResumeError:
		err = s.failure(t, err, fired, elapsed)
		vals = nil
	case glua.ResumeOK:
		if t.waiting {
			// gopher-lua reports a yield from a tail-called Go
			// function as the end of the coroutine.
			t.tail = true
			return
		}
	}
	s.end(t, vals, err)
}

// end finishes a task.
func (s *State) end(t *task, vals []glua.LValue, err error) {
	delete(s.tasks, t.co)
	if err == nil && !t.tail && t.co.Dead && len(s.free) < maxFree {
		// It returned from its function: gopher-lua marks it dead
		// with an empty call stack, ready for another function.
		t.co.SetTop(0)
		s.free = append(s.free, t.co)
	}
	if t.timer != nil {
		t.timer.Stop()
	}
	if t.done != nil {
		t.done(vals, err)
	} else if err != nil && !isExit(err) {
		s.errs.Printf("%s: %v", s.opts.Name, err)
	}
}

func isExit(err error) bool {
	var e *ExitError
	return errors.As(err, &e)
}

// failure turns a resume error into the error the caller sees, and reports
// an interruption.
func (s *State) failure(t *task, err error, fired bool, elapsed time.Duration) error {
	name := s.opts.Name
	if t.name != "" {
		name = t.name
	}
	var api *glua.ApiError
	if errors.As(err, &api) {
		if ud, ok := api.Object.(*glua.LUserData); ok {
			if e, ok := ud.Value.(*ExitError); ok {
				return e
			}
		}
	}
	if !fired {
		if api != nil {
			if m, ok := api.Object.(glua.LString); ok {
				if fixed := fileLine(string(m)); fixed != string(m) {
					return fmt.Errorf("lua: %s: %s", name, fixed)
				}
			}
		}
		return fmt.Errorf("lua: %s: %w", name, err)
	}
	msg := err.Error()
	if api != nil {
		msg = glua.LVAsString(api.Object)
	}
	where := ""
	if i := strings.Index(msg, ": context canceled"); i >= 0 {
		where = msg[:i]
	}
	ie := &InterruptError{Script: name, Where: where, Elapsed: elapsed, Deadline: s.deadline, Loop: s.loop.Name()}
	if s.opts.OnStall != nil {
		s.opts.OnStall(Stall{
			Source:   "lua",
			Name:     name,
			Detail:   ie.Error(),
			Elapsed:  elapsed,
			Deadline: s.deadline,
			Labels:   map[string]string{"eventer.loop": s.loop.Name(), "mtev.lua": name},
		})
	}
	return ie
}

// parseErr matches gopher-lua's compile errors ("f.lua line:3(column:7)
// near '=':   syntax error").
var parseErr = regexp.MustCompile(`(\S+) line:(\d+)\(column:(\d+)\) near '([^']*)':\s+(.*)`)

// fileLine rewrites compile errors in msg as "f.lua:3:7: syntax error near '='".
func fileLine(msg string) string {
	fixed := parseErr.ReplaceAllString(msg, "$1:$2:$3: $5 near '$4'")
	if fixed == msg {
		return msg
	}
	// The error passed through the require wrapper, which adds its own
	// position; and gopher-lua ends it with an escaped newline.
	fixed = strings.TrimPrefix(fixed, "=require:1: ")
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(fixed), `\n`))
}

// arm starts the interrupt timer for one resume and returns the context the
// VM checks.
func (s *State) arm() context.Context {
	s.mu.Lock()
	s.running = true
	s.started = time.Now()
	ctx := s.ctx
	s.mu.Unlock()
	s.timer.Reset(s.deadline)
	return ctx
}

// fire runs on the timer's goroutine: it cancels the running resume if it
// has really run for the whole deadline (a late timer of an earlier resume
// finds a younger one and leaves it alone).
func (s *State) fire() {
	s.mu.Lock()
	if s.running && !s.fired && time.Since(s.started) >= s.deadline {
		s.fired = true
		s.cancel()
	}
	s.mu.Unlock()
}

// disarm stops the timer after a resume; after an interruption it renews
// the context.
func (s *State) disarm() (time.Duration, bool) {
	s.timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
	elapsed := time.Since(s.started)
	fired := s.fired
	if fired {
		s.fired = false
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.L.SetContext(s.ctx)
	}
	return elapsed, fired
}

// extend restarts the current resume's deadline (a heartbeat from Lua).
func (s *State) extend() {
	if s.deadline <= 0 {
		return
	}
	s.mu.Lock()
	if s.running && !s.fired {
		s.started = time.Now()
		s.timer.Reset(s.deadline)
	}
	s.mu.Unlock()
}

// taskOf returns the scheduled task running as L, or raises a Lua error
// naming op: yielding calls work only in mtev's coroutines.
func (s *State) taskOf(L *glua.LState, op string) *task {
	t, ok := s.tasks[L]
	if !ok || t != s.current {
		L.RaiseError("%s: not in an mtev coroutine (call it from the module's function or one started by mtev.coroutine_spawn)", op)
	}
	return t
}

// park marks t as waiting for a wake-up arranged by the caller and yields.
func (s *State) park(L *glua.LState, t *task) int {
	t.waiting = true
	return L.Yield()
}
