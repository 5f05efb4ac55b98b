package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	err = supervise(ctx, env, cfg, "prefix", false, nil, nil)
	stateFlag := ""
	if *dirFlag != "" {
		stateFlag = " --state-dir " + *dirFlag
	}
	fmt.Fprintf(env.Stderr, "\ndemo: done. Next, read what was recorded:\n")
	fmt.Fprintf(env.Stderr, "  mtev-supervise traces list%s --service demo\n", stateFlag)
	fmt.Fprintf(env.Stderr, "  mtev-supervise traces show%s latest\n", stateFlag)
	fmt.Fprintf(env.Stderr, "  mtev-supervise traces top%s\n", stateFlag)
	return err
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
