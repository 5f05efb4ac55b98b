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

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/console"
	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/listener"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/hearts"
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
	// Console is the console server when App.Console is set.
	Console *console.Server
	// Router is the HTTP/REST router of every HTTP listener, configured
	// by <rest>; register routes on it in App.Start.
	Router *rest.Router
	// Listeners are the <listeners>, opened after App.Start.
	Listeners *listener.Set
}

// Main runs app and exits the process with its status. Call it from main.
func Main(app App) {
	os.Exit(Run(app))
}

// Run runs app as described in the package documentation and returns the
// process exit status.
func Run(app App) int {
	if app.Name == "" {
		app.Name = filepath.Base(os.Args[0])
	}
	switch {
	case os.Getenv(hearts.EnvFD) != "":
		return runChild(app, true)
	case os.Getenv(ForegroundEnv) == "1":
		return runChild(app, false)
	default:
		return superviseSelf(app)
	}
}

// runChild runs the service itself.
func runChild(app App, supervised bool) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	rt := &Runtime{Supervised: supervised, Logs: log.New()}
	defer rt.Logs.Close()
	if app.ConfigFile != "" {
		if err := loadConfig(&app, rt); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", app.Name, err)
			return watchdog.ExitConfig
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
	if supervised {
		if err := joinSupervisor(ctx, app, rt); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", app.Name, err)
			return 1
		}
	}
	if err := serve(ctx, app, rt); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", app.Name, err)
		return 1
	}
	return 0
}

// joinSupervisor takes the heart table, the crash-output fd and the dump
// channel the supervisor passed.
func joinSupervisor(ctx context.Context, app App, rt *Runtime) error {
	if v := os.Getenv(watchdog.CrashFDEnv); v != "" {
		fd, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("runtime: %s=%q: %w", watchdog.CrashFDEnv, v, err)
		}
		f := os.NewFile(uintptr(fd), "crash-output")
		if err := debug.SetCrashOutput(f, debug.CrashOptions{}); err != nil {
			return fmt.Errorf("runtime: crash output: %w", err)
		}
		f.Close() // SetCrashOutput keeps its own copy
	}
	t, err := hearts.OpenFromEnv()
	if err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	rt.Hearts = t
	rt.StartCount = int(t.StartCount()) + 1
	var rec *dump.Recorder
	if app.FlightRecorder >= 0 {
		window := app.FlightRecorder
		if window == 0 {
			window = 10 * time.Second
		}
		// A failure (another flight recorder runs) leaves dumps without
		// a trace file; the dump reply says why.
		rec, _ = dump.StartFlightRecorder(window, 10<<20)
	}
	if os.Getenv(dump.EnvFD) != "" {
		go func() {
			// Runs on no loop, so it answers when a loop hangs. It ends
			// with the process (the parent closes its end, or exit).
			_ = dump.ServeFromEnv(context.WithoutCancel(ctx), dump.Options{Recorder: rec})
		}()
	}
	return nil
}

// serve runs the eventer and the app until ctx is done.
func serve(ctx context.Context, app App, rt *Runtime) error {
	opts := app.Eventer
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
func superviseSelf(app App) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: find own executable: %v\n", app.Name, err)
		return 1
	}
	cfg := app.Supervisor
	cfg.Name = app.Name
	cfg.Command = append([]string{exe}, os.Args[1:]...)
	if cfg.StateDir == "" {
		cfg.StateDir = watchdog.DefaultStateDir(os.Getenv)
	}
	events := app.Events
	if events == nil {
		events = func(e watchdog.Event) { fmt.Fprintf(os.Stderr, "%s supervisor: %s\n", app.Name, e) }
	}
	sup, err := watchdog.New(cfg, watchdog.Options{Events: events, Output: passThrough})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", app.Name, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fwd := make(chan os.Signal, 4)
	signal.Notify(fwd, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
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
	var ce *watchdog.ChildExitError
	if err != nil && !errors.As(err, &ce) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", app.Name, err)
	}
	return watchdog.ExitStatus(err)
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
