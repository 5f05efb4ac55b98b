package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

func init() {
	Register(&Command{
		Name:    "demo",
		Summary: "watch the supervisor catch a bundled example that stalls and crashes",
		Run:     demoCmd,
	})
	Register(&Command{Name: "demo-child", Hidden: true, Run: demoChild})
}

func demoCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "demo", "demo [--duration D] [--state-dir DIR]")
	duration := fs.Duration("duration", 15*time.Second, "stop by itself after this long (0: run until interrupted)")
	dirFlag := fs.String("state-dir", "", "state directory (default: $MTEV_STATE_DIR, else $XDG_STATE_HOME/mtev-supervise)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	dir, err := stateDir(env, *dirFlag)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: find own executable: %w", err)
	}
	cfg := watchdog.Config{
		Name:         "demo",
		Command:      []string{self, "demo-child"},
		StateDir:     dir,
		Restart:      watchdog.RestartAlways,
		BackoffMin:   200 * time.Millisecond,
		BackoffMax:   2 * time.Second,
		BackoffReset: 3 * time.Second,
		Retries:      20,
		Span:         time.Minute,
		StopTimeout:  2 * time.Second,
		Hearts:       watchdog.HeartsRequire,
		HeartGrace:   700 * time.Millisecond,
		DumpBudget:   time.Second,
	}
	fmt.Fprintf(env.Stderr, "demo: supervising a bundled example service for %v (Ctrl-C stops it sooner).\n", *duration)
	fmt.Fprintln(env.Stderr, "demo: it links pkg/runtime: two event loops, each with a heart the supervisor watches.")
	fmt.Fprintln(env.Stderr, "demo: in turn it hangs a loop, crashes, and exits 1; watch each incident get detected, captured and restarted.")
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	// The supervisor's account is the narrative; a child's raw fatal
	// output is left to `traces show`.
	again := invokedAs(env)
	fatal := &fatalFilter{env: env, self: again}
	err = supervise(ctx, env, cfg, "prefix", false, nil, nil, func(w *outputWriter) { w.filter = fatal.keep })
	stateFlag := ""
	if *dirFlag != "" {
		stateFlag = " --state-dir " + *dirFlag
	}
	fmt.Fprintf(env.Stderr, "\ndemo: done. Next, read what was recorded:\n")
	fmt.Fprintf(env.Stderr, "  %s traces list%s --service demo\n", again, stateFlag)
	fmt.Fprintf(env.Stderr, "  %s traces show%s latest\n", again, stateFlag)
	fmt.Fprintf(env.Stderr, "  %s traces top%s\n", again, stateFlag)
	return err
}

// fatalFilter drops a child's Go fatal output (from its first line, "panic:
// ...", "fatal error: ...", "SIGSEGV: ...", to the child's end) from the
// terminal, and says once per child where to find it.
type fatalFilter struct {
	env  *Env
	self string
	mu   sync.Mutex
	pid  int // the child whose fatal output is being dropped
}

func (f *fatalFilter) keep(l watchdog.Line) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Stream != watchdog.Stderr {
		return true
	}
	if f.pid == l.PID {
		return false
	}
	if !watchdog.StartsFatal(l.Text) {
		return true
	}
	f.pid = l.PID
	fmt.Fprintf(f.env.Stderr, "demo: pid %d is dying: %s (its full fatal output is kept with the incident: %s traces show latest)\n", l.PID, l.Text, f.self)
	return false
}

// invokedAs returns the command that runs this program again the way the
// user ran it: its name when it was found on the PATH, "go run
// ./cmd/mtev-supervise" after go run, else the path it was run as.
func invokedAs(env *Env) string {
	a := env.Args0
	if a == "" {
		return "mtev-supervise"
	}
	if !strings.Contains(a, "/") {
		return a
	}
	if strings.Contains(a, "/go-build") && strings.Contains(a, "/exe/") {
		if fi, err := os.Stat(filepath.Join("cmd", "mtev-supervise")); err == nil && fi.IsDir() {
			return "go run ./cmd/mtev-supervise"
		}
		return "go run github.com/mtev-supervise/mtev-supervise/cmd/mtev-supervise@latest"
	}
	return a
}

// demoLoopTimeout is the heart timeout of the demo's loops.
const demoLoopTimeout = 500 * time.Millisecond

// demoChild is the bundled example service, linking pkg/runtime. Depending
// on how many times it has been started, it hangs one of its loops,
// crashes on a loop, or exits with status 1 after a short while.
func demoChild(ctx context.Context, env *Env, args []string) error {
	var served atomic.Int64
	app := runtime.App{
		Name:    "demo",
		Eventer: eventer.Options{Concurrency: 2, Timeout: demoLoopTimeout},
		Start: func(ctx context.Context, rt *runtime.Runtime) error {
			for _, l := range rt.Eventer.Default().Loops() {
				if _, err := l.Every("serve", 20*time.Millisecond, func() { served.Add(1) }); err != nil {
					return err
				}
			}
			_, err := rt.Eventer.Default().Loop(0).Every("report", 500*time.Millisecond, func() {
				fmt.Fprintf(env.Stdout, "demo service: handled %d requests\n", served.Load())
			})
			return err
		},
		Run: func(ctx context.Context, rt *runtime.Runtime) error {
			fmt.Fprintf(env.Stdout, "demo service: start %d, pid %d: serving on loops e:default/0 and e:default/1\n", rt.StartCount, os.Getpid())
			select {
			case <-ctx.Done():
				fmt.Fprintln(env.Stdout, "demo service: asked to stop; bye")
				return nil
			case <-time.After(1500 * time.Millisecond):
			}
			switch rt.StartCount % 3 {
			case 1:
				fmt.Fprintln(env.Stderr, "demo service: loop e:default/1 takes a lock twice (it hangs; its heart stops)")
				if err := rt.Hang("default", 1); err != nil {
					return err
				}
				<-ctx.Done()
				return nil
			case 2:
				fmt.Fprintln(env.Stderr, "demo service: loop e:default/0 dereferences a nil pointer")
				if err := rt.Crash(); err != nil {
					return err
				}
				<-ctx.Done()
				return nil
			default:
				fmt.Fprintln(env.Stderr, "demo service: giving up with status 1")
				return errDemoExit
			}
		},
	}
	if err := runtime.Run(ctx, app); err != nil {
		var ce *watchdog.ChildExitError
		if !errors.As(err, &ce) {
			fmt.Fprintf(env.Stderr, "%s: %v\n", app.Name, err)
		}
		return &StatusError{Code: runtime.ExitStatus(err)}
	}
	return nil
}

// errDemoExit makes the demo service exit with status 1.
var errDemoExit = errors.New("exiting with status 1 on purpose")
