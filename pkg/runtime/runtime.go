package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/cluster"
	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/console"
	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/listener"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/module"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/hearts"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/report"
)

// ForegroundEnv, set to 1, runs the program without a supervisor.
const ForegroundEnv = "MTEV_FOREGROUND"

// App describes a service.
type App struct {
	// Name of the service; default: the base name of the executable.
	Name string
	// Eventer configures the pools and queues. Its NewHeart is set by the
	// runtime.
	Eventer eventer.Options
	// Start runs once the eventer runs, before readiness is declared: set
	// up listeners and timers here. Optional.
	Start func(ctx context.Context, rt *Runtime) error
	// Run is the service's life: it returns when ctx is done (or earlier,
	// to exit). Nil waits for ctx.
	Run func(ctx context.Context, rt *Runtime) error
	// Supervisor configures self-supervision (restart policy, backoff,
	// heart deadlines, state directory). Command and Name are filled in.
	Supervisor watchdog.Config
	// Events receives supervisor events when the program supervises
	// itself; nil prints them to stderr.
	Events func(watchdog.Event)
	// FlightRecorder is the window of the runtime/trace flight recorder
	// whose snapshot goes with a dump; zero means 10 s, negative off.
	FlightRecorder time.Duration
	// Modules, when set, is given the modules of the <modules> section
	// before they start and returns those to start: a program that runs
	// some images itself (the lua command runs lua_general) leaves them
	// out. Nil starts them all.
	Modules func([]module.Spec) []module.Spec
	// ConfigFile is the application's XML configuration (optional). Its
	// <eventer> section overrides Eventer, its <logs> section configures
	// Runtime.Logs; both are validated with file:line errors. Runtime.Reload
	// re-reads it.
	ConfigFile string
	// Console, when set, serves the operator console (pkg/console): on a
	// unix socket in the state directory, and on TCP when configured
	// (see ConsoleOptions and the <console> section).
	Console *ConsoleOptions
}

// Runtime is the running framework, handed to App.Start and App.Run.
type Runtime struct {
	// Eventer is the running eventer.
	Eventer *eventer.System
	// Hearts is the heart table, nil when not supervised.
	Hearts *hearts.Table
	// StartCount is 1 for the first child, 2 for the first restart, ...
	// (0 when not supervised).
	StartCount int
	// Supervised says whether a supervisor watches this process.
	Supervised bool
	// Config is the loaded configuration file (nil without one).
	Config *config.Config
	// Logs is the log graph: the built-in facilities (error, notice,
	// debug, stderr) and whatever the <logs> section adds. SIGUSR1 reopens
	// its files.
	Logs *log.Graph
	// Modules are the modules of the <modules> section (nil without a
	// configuration file), up before App.Start.
	Modules *module.Set
	// Clusters are the clusters of the <clusters> section (nil without
	// one), joined before App.Start.
	Clusters *cluster.Manager
	// Console is the console server when App.Console is set.
	Console *console.Server
	// Router is the HTTP/REST router of every HTTP listener, configured
	// by <rest>; register routes on it in App.Start.
	Router *rest.Router
	// Listeners are the <listeners>, opened after App.Start.
	Listeners *listener.Set

	reports  *report.Sender // the stall report channel; nil when not supervised
	name     string         // the service's name
	flight   *dump.Recorder // the flight recorder, nil if none runs
	disclose bool           // serve /mtev/rest.json (DiscloseEndpoints)
}

// SupervisorPIDEnv is set by a supervisor in its child's environment to
// its own pid. It alone decides that a program runs as the supervised
// child: the heart table, the dump channel and the crash-output fd are
// optional (mtev-supervise run --hearts off passes no table).
const SupervisorPIDEnv = "MTEV_SUPERVISOR_PID"

// Main runs app and exits the process with the status Run's error maps to
// (ExitStatus). Call it from main.
func Main(app App) {
	name := app.Name
	if name == "" {
		name = filepath.Base(os.Args[0])
	}
	os.Exit(Status(name, Run(context.Background(), app)))
}

// Status prints an error of Run on stderr under the service's name, as
// Main does (a self-supervised child's own failure was already told by the
// supervisor), and returns the exit status it maps to. For a main that
// wraps Run with flags of its own.
func Status(name string, err error) int {
	if err != nil && !isChildExit(err) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	}
	return ExitStatus(err)
}

// ExitStatus maps an error of Run to a process exit status: 0 for nil, 2
// for a configuration error, the child's status when a self-supervised
// program's child failed under RestartNever, the supervisor's documented
// statuses for its own errors (watchdog.ExitStatus), 1 otherwise.
func ExitStatus(err error) int { return watchdog.ExitStatus(err) }

func isChildExit(err error) bool {
	var ce *watchdog.ChildExitError
	return errors.As(err, &ce)
}

// Run runs app as described in the package documentation until ctx is
// done, SIGTERM or SIGINT arrives, or the app (or, when the program
// supervises itself, the supervisor) ends. A bad configuration file gives
// an error wrapping watchdog.ErrConfig.
func Run(ctx context.Context, app App) error {
	if app.Name == "" {
		app.Name = filepath.Base(os.Args[0])
	}
	switch mode(os.Getenv) {
	case modeChild:
		return runChild(ctx, app, true)
	case modeForeground:
		return runChild(ctx, app, false)
	default:
		return superviseSelf(ctx, app)
	}
}

// runMode is how a program linking the runtime runs.
type runMode int

const (
	modeSelf       runMode = iota // supervise itself (the default)
	modeChild                     // the child of a supervisor
	modeForeground                // no supervisor at all
)

// mode decides how to run from the environment: MTEV_SUPERVISOR_PID alone
// says the program is a supervisor's child, so that a child is never a
// supervisor too, whatever else its supervisor passed.
func mode(getenv func(string) string) runMode {
	switch {
	case getenv(SupervisorPIDEnv) != "":
		return modeChild
	case getenv(ForegroundEnv) == "1":
		return modeForeground
	}
	return modeSelf
}

// runChild runs the service itself, as a supervisor's child when
// supervised (what it was given is read from the environment), else
// alone.
func runChild(ctx context.Context, app App, supervised bool) error {
	if !supervised {
		return runAttached(ctx, app, nil)
	}
	a, err := attachFromEnv()
	if err != nil {
		return err
	}
	// What the supervisor passed is for this process only: a program this
	// one starts decides for itself.
	for _, k := range childEnvVars {
		os.Unsetenv(k)
	}
	defer func() {
		for _, f := range []*os.File{a.Dump, a.Reports, a.CrashOutput} {
			if f != nil {
				f.Close()
			}
		}
	}()
	return runAttached(ctx, app, &a)
}

// childEnvVars are the variables a supervisor sets for its child alone.
var childEnvVars = []string{SupervisorPIDEnv, hearts.EnvFD, dump.EnvFD, watchdog.CrashFDEnv, report.EnvFD}

// Attach is what a supervisor hands its child: each part is optional.
type Attach struct {
	// Hearts is the heart table (the child's view).
	Hearts *hearts.Table
	// Dump is the child's end of the dump channel (dump.Pair); the
	// runtime answers dump requests on it.
	Dump *os.File
	// Reports is the child's end of the report channel (report.Pair),
	// on which ReportStall sends.
	Reports *os.File
	// CrashOutput receives a fatal error's trace (debug.SetCrashOutput).
	CrashOutput *os.File
	// StartCount is 1 for the first child, 2 for the first restart, ...
	StartCount int
}

// RunAttached runs app as a supervised child with what a is given, not
// reading the environment: the child side without any supervisor process
// (package runtimetest builds an Attach for an app's own tests). It
// returns when ctx is done, SIGTERM or SIGINT arrives, or the app ends.
// The files of a stay the caller's.
func RunAttached(ctx context.Context, app App, a Attach) error {
	if app.Name == "" {
		app.Name = filepath.Base(os.Args[0])
	}
	return runAttached(ctx, app, &a)
}

// attachFromEnv reads what the supervisor passed in the environment.
func attachFromEnv() (Attach, error) {
	var a Attach
	fdOf := func(k string) (*os.File, error) {
		v := os.Getenv(k)
		if v == "" {
			return nil, nil
		}
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 3 {
			return nil, fmt.Errorf("runtime: %s=%q is not a descriptor number above 2", k, v)
		}
		// Never passed on to a program this one starts.
		syscall.CloseOnExec(fd)
		return os.NewFile(uintptr(fd), k), nil
	}
	var err error
	if a.CrashOutput, err = fdOf(watchdog.CrashFDEnv); err != nil {
		return a, err
	}
	if a.Dump, err = fdOf(dump.EnvFD); err != nil {
		return a, err
	}
	if a.Reports, err = fdOf(report.EnvFD); err != nil {
		return a, err
	}
	if n, err := strconv.Atoi(os.Getenv("MTEV_START_COUNT")); err == nil {
		a.StartCount = n
	}
	if os.Getenv(hearts.EnvFD) != "" {
		t, err := hearts.OpenFromEnv()
		if err != nil {
			return a, fmt.Errorf("runtime: %w", err)
		}
		a.Hearts = t
		a.StartCount = int(t.StartCount()) + 1
	}
	return a, nil
}

// runAttached runs the service; a is nil when no supervisor watches it.
func runAttached(ctx context.Context, app App, a *Attach) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	rt := &Runtime{Supervised: a != nil, Logs: log.New(), name: app.Name}
	defer rt.Logs.Close()
	if app.ConfigFile != "" {
		if err := loadConfig(&app, rt); err != nil {
			return fmt.Errorf("%w: %w", watchdog.ErrConfig, err)
		}
		defer rt.Config.Close()
	}
	reopenCtx, stopReopen := context.WithCancel(ctx)
	reopenDone := make(chan struct{})
	defer func() { stopReopen(); <-reopenDone }()
	go func() {
		defer close(reopenDone)
		_ = rt.Logs.ServeReopen(reopenCtx)
	}()
	if a != nil {
		closeJoin, err := join(ctx, app, rt, *a)
		if err != nil {
			return err
		}
		defer closeJoin()
	}
	return serve(ctx, app, rt)
}

// join takes what the supervisor gave: the crash output, the heart table,
// the dump channel (answered on a goroutine of its own) and the report
// channel. The returned function stops the dump server and closes the
// report sender.
func join(ctx context.Context, app App, rt *Runtime, a Attach) (func(), error) {
	if a.CrashOutput != nil {
		if err := debug.SetCrashOutput(a.CrashOutput, debug.CrashOptions{}); err != nil {
			return nil, fmt.Errorf("runtime: crash output: %w", err)
		}
	}
	rt.Hearts = a.Hearts
	rt.StartCount = a.StartCount
	var rec *dump.Recorder
	if app.FlightRecorder >= 0 && a.Dump != nil {
		window := app.FlightRecorder
		if window == 0 {
			window = 10 * time.Second
		}
		// A failure (another flight recorder runs) leaves dumps without
		// a trace file; the dump reply says why.
		rec, _ = dump.StartFlightRecorder(window, 10<<20)
		rt.flight = rec
	}
	dumpCtx, stopDump := context.WithCancel(context.WithoutCancel(ctx))
	dumpDone := make(chan struct{})
	if a.Dump != nil {
		go func() {
			// Runs on no loop, so it answers when a loop hangs. It ends
			// when the parent closes its end, or when the service ends.
			defer close(dumpDone)
			_ = dump.Serve(dumpCtx, a.Dump, dump.Options{Recorder: rec})
		}()
	} else {
		close(dumpDone)
	}
	if a.Reports != nil {
		snd, err := report.NewSender(a.Reports)
		if err != nil {
			stopDump()
			<-dumpDone
			return nil, fmt.Errorf("runtime: %w", err)
		}
		rt.reports = snd
	}
	return func() {
		stopDump()
		<-dumpDone
		rec.Stop()
		if rt.reports != nil {
			rt.reports.Close()
		}
	}, nil
}

// serve runs the eventer and the app until ctx is done.
func serve(ctx context.Context, app App, rt *Runtime) error {
	opts := app.Eventer
	opts.Stats = eventerStats(opts.Stats)
	if rt.Hearts != nil {
		t := rt.Hearts
		locked := lockedPools(opts)
		opts.NewHeart = func(name string, timeout time.Duration) eventer.Heart {
			h, err := t.NewHeart(name, timeout)
			if err != nil {
				// A full table leaves this loop unwatched, never the
				// service down.
				fmt.Fprintf(os.Stderr, "runtime: heart for %s: %v\n", name, err)
				return nil
			}
			if !locked[poolOf(name)] {
				// The loop's goroutine moves between threads: the
				// thread that created the heart means nothing.
				h.UnbindThread()
			}
			return h
		}
	}
	ev, err := eventer.New(opts)
	if err != nil {
		return err
	}
	if err := ev.Start(); err != nil {
		return err
	}
	defer ev.Stop()
	rt.Eventer = ev
	if err := rt.initHTTP(); err != nil {
		return err
	}
	defer rt.stopListeners()
	if err := startModules(ctx, app, rt); err != nil {
		return err
	}
	defer rt.Modules.Close()
	leave, err := rt.startClusters()
	if err != nil {
		return err
	}
	defer leave()
	if err := rt.mountExtensions(); err != nil {
		return err
	}
	if err := childStarted(app, rt); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if app.Console != nil {
		stopConsole, err := startConsole(app, rt, cancel)
		if err != nil {
			return err
		}
		defer stopConsole()
	}
	if app.Start != nil {
		if err := app.Start(ctx, rt); err != nil {
			return err
		}
	}
	if err := rt.mountBuiltins(); err != nil {
		return err
	}
	if err := rt.startListeners(); err != nil {
		return err
	}
	rt.Hearts.Ready()
	if app.Run != nil {
		return app.Run(ctx, rt)
	}
	<-ctx.Done()
	return nil
}

// lockedPools lists the pools whose loops are locked to OS threads.
func lockedPools(opts eventer.Options) map[string]bool {
	m := map[string]bool{}
	for _, p := range opts.Pools {
		m[p.Name] = p.LockOSThread
	}
	return m
}

// poolOf returns the pool of loop "e:<pool>/<index>".
func poolOf(loop string) string {
	name := strings.TrimPrefix(loop, "e:")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[:i]
	}
	return name
}

// superviseSelf runs a supervisor whose child is this program.
func superviseSelf(ctx context.Context, app App) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("runtime: find own executable: %w", err)
	}
	cfg := app.Supervisor
	cfg.Name = app.Name
	cfg.Command = append([]string{exe}, os.Args[1:]...)
	// As a container's PID 1 the program is its own init: it reaps every
	// orphan (the watchdog's reaper), forwards what an init forwards, and
	// ends with its child's status.
	cfg.Init = cfg.Init || os.Getpid() == 1
	// Sockets a service manager passed to the program (systemd socket
	// activation) are held by its supervisor and passed to every child:
	// its listeners take them by name.
	cfg.AdoptInherited = true
	if cfg.StateDir == "" {
		cfg.StateDir = watchdog.DefaultStateDir(os.Getenv)
	}
	events := app.Events
	if events == nil {
		events = func(e watchdog.Event) { fmt.Fprintf(os.Stderr, "%s supervisor: %s\n", app.Name, e) }
	}
	if app.ConfigFile != "" {
		// <managed> sidecars run beside the app, under this supervisor.
		apps, err := readManaged(app.ConfigFile, app.Name, cfg)
		if err != nil {
			return fmt.Errorf("%w: %w", watchdog.ErrConfig, err)
		}
		if len(apps) > 0 {
			return superviseWithSidecars(ctx, cfg, events, apps)
		}
	}
	sup, err := watchdog.New(cfg, watchdog.Options{Events: events, Output: passThrough})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fwd := make(chan os.Signal, 4)
	signal.Notify(fwd, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	if cfg.Init {
		signal.Notify(fwd, watchdog.InitForwarded...)
	}
	defer signal.Stop(fwd)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-fwd:
				sup.Signal(sig.(syscall.Signal))
			case <-done:
				return
			}
		}
	}()
	err = sup.Serve(ctx)
	close(done)
	return err
}

// passThrough writes child output to the same stream of this process.
func passThrough(l watchdog.Line) {
	w := os.Stdout
	if l.Stream == watchdog.Stderr {
		w = os.Stderr
	}
	b := append(l.Text[:len(l.Text):len(l.Text)], '\n')
	if l.Partial {
		b = b[:len(b)-1]
	}
	w.Write(b)
}
