package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/incident"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/report"
)

// appEnv selects what the test binary does when it runs as an app.
const appEnv = "MTEV_RUNTIME_TEST_APP"

// pidFileEnv names the file the "idle" app writes its pid to.
const pidFileEnv = "MTEV_RUNTIME_TEST_PIDFILE"

func TestMain(m *testing.M) {
	switch os.Getenv(appEnv) {
	case "":
		os.Exit(m.Run())
	case "crash-once":
		// Crashes from a loop on its first start, exits 0 on the next.
		Main(App{
			Name:       "crash-once",
			Eventer:    eventer.Options{Concurrency: 2, Timeout: time.Second},
			Supervisor: watchdog.Config{ZeroBackoff: true},
			Run: func(ctx context.Context, rt *Runtime) error {
				if rt.StartCount == 1 {
					rt.Crash()
					<-ctx.Done()
				}
				return nil
			},
		})
	case "idle":
		// Writes its pid to $MTEV_RUNTIME_TEST_PIDFILE once it runs, then
		// waits to be stopped.
		Main(App{
			Name:    "idle",
			Eventer: eventer.Options{Concurrency: 1, Timeout: time.Second},
			Run: func(ctx context.Context, rt *Runtime) error {
				if !rt.Supervised {
					return errors.New("not supervised")
				}
				if err := os.WriteFile(os.Getenv(pidFileEnv), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
					return err
				}
				<-ctx.Done()
				return nil
			},
		})
	case "report":
		// A "route" hangs on a goroutine labelled with its name; the app
		// reports it soft, floods the channel, then reports it hard.
		Main(App{
			Name:    "report",
			Eventer: eventer.Options{Concurrency: 1, Timeout: time.Second},
			Run: func(ctx context.Context, rt *Runtime) error {
				labels := map[string]string{"mtev.route": "GET /slow"}
				go pprof.Do(context.Background(), pprof.Labels("mtev.route", "GET /slow"), func(context.Context) { stuckRoute() })
				st := Stall{Source: "http", Name: "GET /slow", Detail: "handler past its deadline",
					Elapsed: 6 * time.Second, Deadline: 5 * time.Second, Labels: labels}
				if err := rt.ReportStall(st); err != nil {
					return err
				}
				for range 1000 {
					rt.ReportStall(st) // a flood: rate limited, never blocking
				}
				st.Hard = true
				for err := rt.ReportStall(st); err != nil; err = rt.ReportStall(st) {
					if !errors.Is(err, report.ErrRateLimited) {
						return err
					}
					time.Sleep(10 * time.Millisecond) // the limiter refills
				}
				<-ctx.Done()
				return nil
			},
		})
	case "hang":
		// Hangs loop 1 of the default pool at once.
		// Loops locked to threads, as libmtev's: a stall names the thread.
		Main(App{
			Name: "hang",
			Eventer: eventer.Options{Concurrency: 2, Timeout: 200 * time.Millisecond,
				Pools: []eventer.PoolOptions{{Name: "default", LockOSThread: true}}},
			Run: func(ctx context.Context, rt *Runtime) error {
				if err := rt.Hang("default", 1); err != nil {
					return err
				}
				<-ctx.Done()
				return nil
			},
		})
	}
	os.Exit(99)
}

func records(t *testing.T, stateDir string) []*trace.Record {
	t.Helper()
	recs, err := incident.ReadAll(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// Run directly, an app supervises itself: the crash of its first child is
// recorded with the goroutine that crashed, through the crash-output
// memfd, and the second child runs and exits cleanly.
func TestSelfSupervisedRestartsAfterCrash(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), appEnv+"=crash-once", "MTEV_STATE_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("self-supervised app: %v\n%s", err, out)
	}
	recs := records(t, dir)
	if len(recs) != 2 {
		t.Fatalf("%d records, want the crash and the clean exit\n%s", len(recs), out)
	}
	crash := recs[0]
	if crash.Reason != trace.ReasonCrash || crash.StartCount != 1 || crash.Action != trace.ActionRestart {
		t.Fatalf("first record: reason %s start %d action %s", crash.Reason, crash.StartCount, crash.Action)
	}
	if f, ok := trace.CulpritFrame(trace.Culprit(crash)); !ok || !strings.HasSuffix(f.Function, "runtime.crashNow") {
		t.Fatalf("culprit frame %+v", f)
	}
	if crash.CrashOutput == "" || !strings.Contains(crash.CrashOutput, "nil pointer dereference") {
		t.Fatalf("crash output: %.200q", crash.CrashOutput)
	}
	if recs[1].Reason != trace.ReasonExit || recs[1].StartCount != 2 || *recs[1].Exit.Code != 0 {
		t.Fatalf("second record: %s start %d exit %s", recs[1].Reason, recs[1].StartCount, recs[1].Exit)
	}
}

// A linked app under a supervisor joins its heart table: a hung loop is
// reported by its heart's name, and the capture names the goroutine.
func TestHungLoopIsNamed(t *testing.T) {
	dir := t.TempDir()
	var stalls []watchdog.Stalled
	s, err := watchdog.New(watchdog.Config{
		Name:       "hang",
		Command:    []string{os.Args[0], "-test.run=^$"},
		Env:        []string{appEnv + "=hang"},
		StateDir:   dir,
		HeartGrace: 300 * time.Millisecond,
		Restart:    watchdog.RestartNever,
	}, watchdog.Options{Events: func(e watchdog.Event) {
		if st, ok := e.(watchdog.Stalled); ok {
			stalls = append(stalls, st)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = s.Serve(ctx)
	var ce *watchdog.ChildExitError
	if !errors.As(err, &ce) || ce.Exit.Signal != "SIGKILL" {
		t.Fatalf("Serve: %v, want the child killed for its stall", err)
	}
	recs := records(t, dir)
	if len(recs) != 2 {
		t.Fatalf("%d records, want the soft and the hard stall", len(recs))
	}
	for _, r := range recs {
		if r.Stall == nil || r.Stall.Heart != "e:default/1" || r.Stall.ThreadID == 0 {
			t.Fatalf("stall %+v", r.Stall)
		}
		f, ok := trace.CulpritFrame(trace.Culprit(r))
		if !ok || !strings.HasSuffix(f.Function, "runtime.hangForever") {
			t.Fatalf("%s stall: culprit frame %+v", r.Stall.Stage, f)
		}
	}
	if recs[0].Stall.Stage != "soft" || recs[1].Stall.Stage != "hard" {
		t.Fatalf("stages %s, %s", recs[0].Stall.Stage, recs[1].Stall.Stage)
	}
}

// The configuration file shapes the eventer (<eventer><config>) and the
// logs (<logs>); a bad one is refused with file:line and status 2.
func TestConfigFile(t *testing.T) {
	t.Setenv(ForegroundEnv, "1")
	dir := t.TempDir()
	logPath := dir + "/app.log"
	good := dir + "/app.xml"
	os.WriteFile(good, []byte(`<app>
  <eventer><config><concurrency>3</concurrency><loop_io>2,1</loop_io></config></eventer>
  <logs>
    <log name="file" type="file_synch" path="`+logPath+`"/>
    <log name="notice"><outlet name="file"/></log>
  </logs>
</app>
`), 0o644)
	var pools string
	err := Run(context.Background(), App{Name: "cfg", ConfigFile: good, Run: func(ctx context.Context, rt *Runtime) error {
		pools = fmt.Sprintf("default=%d io=%d", rt.Eventer.Default().Len(), rt.Eventer.Pool("io").Len())
		rt.Logs.Facility("notice").Log().Msg("configured by file")
		// Reload on request: a bad edit is refused and the running
		// configuration stays; a good one reports what changed.
		os.WriteFile(good, []byte("<app><eventer><config><concurrency>x</concurrency></config></eventer>\n"), 0o644)
		if _, err := rt.Reload(); err == nil {
			return errors.New("reload of a broken file succeeded")
		}
		os.WriteFile(good, []byte(`<app><eventer><config><concurrency>4</concurrency></config></eventer></app>`), 0o644)
		changed, err := rt.Reload()
		if err != nil || len(changed) == 0 {
			return fmt.Errorf("reload: changed %v, %v", changed, err)
		}
		return nil
	}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if pools != "default=3 io=2" {
		t.Fatalf("pools %s", pools)
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "[notice] configured by file") {
		t.Fatalf("log file: %q", b)
	}

	bad := dir + "/bad.xml"
	os.WriteFile(bad, []byte("<app>\n  <eventer><config><loop_io>two</loop_io></config></eventer>\n</app>\n"), 0o644)
	err = Run(context.Background(), App{Name: "cfg", ConfigFile: bad})
	if code := ExitStatus(err); code != watchdog.ExitConfig || !strings.Contains(err.Error(), "bad.xml:2") {
		t.Fatalf("bad file: %v, status %d, want %d", err, code, watchdog.ExitConfig)
	}
}

// Under a supervisor that offers no heart table (mtev-supervise run
// --hearts off), a linked program is the child and nothing more: the
// process tree is the supervisor and the app, never a second supervisor
// under the first.
func TestHeartsOffChildIsNoSupervisor(t *testing.T) {
	dir := t.TempDir()
	pidFile := dir + "/pid"
	started := make(chan int, 4)
	s, err := watchdog.New(watchdog.Config{
		Name:     "idle",
		Command:  []string{os.Args[0], "-test.run=^$"},
		Env:      []string{appEnv + "=idle", pidFileEnv + "=" + pidFile},
		StateDir: dir,
		Hearts:   watchdog.HeartsOff,
		Restart:  watchdog.RestartNever,
	}, watchdog.Options{Events: func(e watchdog.Event) {
		if st, ok := e.(watchdog.Started); ok {
			started <- st.PID
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	child := <-started
	var running int
	deadline := time.Now().Add(30 * time.Second)
	for running == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the app never ran")
		}
		b, _ := os.ReadFile(pidFile)
		running, _ = strconv.Atoi(string(b))
		time.Sleep(10 * time.Millisecond)
	}
	if running != child {
		t.Fatalf("the app runs as pid %d, the supervisor started pid %d: a nested supervisor sits between them", running, child)
	}
	if kids := childrenOf(t, child); len(kids) != 0 {
		t.Fatalf("the app has children %v, want none", kids)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// childrenOf lists the children of every thread of pid.
func childrenOf(t *testing.T, pid int) []string {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		out = append(out, strings.Fields(string(b))...)
	}
	return out
}

// The mode is decided by the supervisor's pid alone.
func TestMode(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want runMode
	}{
		{map[string]string{}, modeSelf},
		{map[string]string{"MTEV_HEARTS_FD": "4"}, modeSelf},
		{map[string]string{SupervisorPIDEnv: "1"}, modeChild},
		{map[string]string{SupervisorPIDEnv: "1", ForegroundEnv: "1"}, modeChild},
		{map[string]string{ForegroundEnv: "1"}, modeForeground},
	} {
		if got := mode(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("%v: mode %d, want %d", tc.env, got, tc.want)
		}
	}
}

var routeLock sync.Mutex

//go:noinline
func stuckRoute() {
	routeLock.Lock()
	routeLock.Lock() // the route's goroutine hangs here
}

// A linked child reports a stall of its own unit of work (an HTTP route):
// the supervisor captures it through its dump, marks the goroutine that
// carries the route's label as the culprit, records the source and name,
// keeps the child running for the soft report, kills it for the hard
// one, and a flood of reports in between does not storm it.
func TestReportedStall(t *testing.T) {
	dir := t.TempDir()
	s, err := watchdog.New(watchdog.Config{
		Name:     "report",
		Command:  []string{os.Args[0], "-test.run=^$"},
		Env:      []string{appEnv + "=report"},
		StateDir: dir,
		Restart:  watchdog.RestartNever,
	}, watchdog.Options{Events: func(e watchdog.Event) { t.Log(e) }, Output: func(l watchdog.Line) { t.Logf("%s", l.Text) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = s.Serve(ctx)
	var ce *watchdog.ChildExitError
	if !errors.As(err, &ce) || ce.Exit.Signal != "SIGKILL" {
		t.Fatalf("Serve: %v, want the child killed for its hard report", err)
	}
	recs := records(t, dir)
	if len(recs) < 2 || len(recs) > 2+report.ReceiveBurst {
		t.Fatalf("%d records, want the soft and the hard report and at most a burst between", len(recs))
	}
	soft, hard := recs[0], recs[len(recs)-1]
	if soft.Stall == nil || soft.Stall.Stage != "soft" || soft.Action != trace.ActionKeepRunning {
		t.Fatalf("first record: stall %+v action %s", soft.Stall, soft.Action)
	}
	if hard.Stall == nil || hard.Stall.Stage != "hard" || hard.Action != trace.ActionStop {
		t.Fatalf("last record: stall %+v action %s", hard.Stall, hard.Action)
	}
	for _, r := range []*trace.Record{soft, hard} {
		st := r.Stall
		if st.Source != "http" || st.Name != "GET /slow" || st.Detail == "" || st.AgeMS != 6000 || st.TimeoutMS != 5000 {
			t.Fatalf("%s record: stall %+v", st.Stage, st)
		}
		if r.Capture == nil || r.Capture.Method != "cooperative" {
			t.Fatalf("%s record: capture %+v", st.Stage, r.Capture)
		}
		f, ok := trace.CulpritFrame(trace.Culprit(r))
		if !ok || !strings.HasSuffix(f.Function, "runtime.stuckRoute") {
			t.Fatalf("%s record: culprit frame %+v", st.Stage, f)
		}
	}
	if soft.Fingerprint == "" || soft.Fingerprint != hard.Fingerprint {
		t.Fatalf("fingerprints %s and %s: repeats of one stalled route must group", soft.Fingerprint, hard.Fingerprint)
	}
	if soft.PID != hard.PID {
		t.Fatal("the soft report must not kill the child")
	}
}
