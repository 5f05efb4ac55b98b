package delve

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// hasFrame reports whether g's stack contains function fn.
func hasFrame(g *trace.Goroutine, fn string) bool {
	return frameIndex(g, fn) >= 0
}

func frameIndex(g *trace.Goroutine, fn string) int {
	for i, f := range g.Frames {
		if f.Function == fn {
			return i
		}
	}
	return -1
}

// withFrame returns the goroutines whose stack contains fn.
func withFrame(res *Result, fn string) []*trace.Goroutine {
	var out []*trace.Goroutine
	for i := range res.Goroutines {
		if hasFrame(&res.Goroutines[i], fn) {
			out = append(out, &res.Goroutines[i])
		}
	}
	return out
}

func only(t *testing.T, res *Result, fn string) *trace.Goroutine {
	t.Helper()
	gs := withFrame(res, fn)
	if len(gs) != 1 {
		t.Fatalf("want one goroutine in %s, got %d; goroutines:\n%s", fn, len(gs), dump(res))
	}
	return gs[0]
}

func dump(res *Result) string {
	var b strings.Builder
	for _, g := range res.Goroutines {
		b.WriteString("goroutine ")
		b.WriteString(g.State)
		if g.WaitReason != "" {
			b.WriteString(" [" + g.WaitReason + "]")
		}
		b.WriteString("\n")
		for _, f := range g.Frames {
			b.WriteString("  " + f.String() + "\n")
		}
	}
	return b.String()
}

// noAttach fails the test if the package attaches to any process.
func noAttach(t *testing.T) {
	beforeAttach = func(pid int) { t.Errorf("attached to pid %d", pid) }
	t.Cleanup(func() { beforeAttach = nil })
}

func checkMutexDeadlock(t *testing.T, res *Result) {
	for _, fn := range []string{"main.lockOrderA", "main.lockOrderB"} {
		g := only(t, res, fn)
		if g.State != "waiting" || g.WaitReason != "sync.Mutex.Lock" {
			t.Errorf("%s: state %q, wait reason %q; want waiting, sync.Mutex.Lock", fn, g.State, g.WaitReason)
		}
		lock, caller := frameIndex(g, "sync.(*Mutex).Lock"), frameIndex(g, fn)
		if lock < 0 || lock > caller {
			t.Errorf("%s: sync.(*Mutex).Lock is not called from it:\n%s", fn, dump(&Result{Goroutines: []trace.Goroutine{*g}}))
		}
		if got := g.Labels["role"]; got != strings.TrimPrefix(fn, "main.") {
			t.Errorf("%s: label role=%q, want %q (labels %v)", fn, got, strings.TrimPrefix(fn, "main."), g.Labels)
		}
		if g.CreatedBy == nil || g.CreatedBy.Function != "main.main" {
			t.Errorf("%s: created by %v, want main.main", fn, g.CreatedBy)
		}
		if g.WaitMS <= 0 {
			t.Errorf("%s: wait_ms %d, want > 0 (two collections ran while it was blocked)", fn, g.WaitMS)
		}
		if g.Culprit {
			t.Errorf("%s: a waiting goroutine is marked culprit", fn)
		}
		if f := g.Frames[frameIndex(g, fn)]; !strings.HasSuffix(f.File, "mutex-deadlock/main.go") || f.Line == 0 {
			t.Errorf("%s: frame %v, want mutex-deadlock/main.go:N", fn, f)
		}
	}
}

func checkChanBlock(t *testing.T, res *Result) {
	g := only(t, res, "main.recvForever")
	if g.ID != 1 || g.State != "waiting" || g.WaitReason != "chan receive" {
		t.Errorf("goroutine %d state %q wait reason %q; want 1 waiting on chan receive", g.ID, g.State, g.WaitReason)
	}
	if g.WaitMS <= 0 {
		t.Errorf("wait_ms %d, want > 0 (two collections ran while it was blocked)", g.WaitMS)
	}
}

func checkSyscallBlock(t *testing.T, res *Result) {
	g := only(t, res, "main.readPipeForever")
	if g.State != "syscall" {
		t.Errorf("state %q, want syscall", g.State)
	}
	if g.ThreadID == 0 {
		t.Fatalf("goroutine in a system call has no thread")
	}
	if on := res.OnThread(g.ThreadID); on == nil || on.ID != g.ID {
		t.Errorf("OnThread(%d) = %v, want goroutine %d", g.ThreadID, on, g.ID)
	}
	checkThread(t, res, g)
}

func checkSpin(t *testing.T, res *Result) {
	culprits := res.Culprits()
	if len(culprits) != 1 {
		t.Fatalf("want one culprit, got %d:\n%s", len(culprits), dump(res))
	}
	g := culprits[0]
	if g.State != "running" || len(g.Frames) == 0 || g.Frames[0].Function != "main.spin" {
		t.Fatalf("culprit: state %q frames %v; want running in main.spin", g.State, g.Frames)
	}
	if g.ThreadID == 0 {
		t.Fatalf("running goroutine has no thread")
	}
	checkThread(t, res, g)
}

// checkThread asserts that g's thread is listed and names g.
func checkThread(t *testing.T, res *Result, g *trace.Goroutine) {
	t.Helper()
	for _, th := range res.Threads {
		if th.ID == g.ThreadID {
			if th.Goroutine != g.ID {
				t.Errorf("thread %d: goroutine %d, want %d", th.ID, th.Goroutine, g.ID)
			}
			return
		}
	}
	t.Errorf("thread %d of goroutine %d not listed", g.ThreadID, g.ID)
}

var spinEnv = []string{"GODEBUG=asyncpreemptoff=1", "GOMAXPROCS=1"}

func TestCaptureScenarios(t *testing.T) {
	tests := []struct {
		scenario string
		env      []string
		check    func(*testing.T, *Result)
	}{
		{"mutex-deadlock", nil, checkMutexDeadlock},
		{"chan-block", nil, checkChanBlock},
		{"syscall-block", nil, checkSyscallBlock},
		{"spin-nopreempt", spinEnv, checkSpin},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			c := startChild(t, scenarioPath(tt.scenario), tt.env)
			if tt.scenario == "spin-nopreempt" {
				c.waitSpinning(30 * time.Second)
			}
			res, err := Capture(context.Background(), c.pid(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			c.assertRunning()
			if res.GoVersion != runtime.Version() {
				t.Errorf("go version %q, want %q", res.GoVersion, runtime.Version())
			}
			if len(res.Threads) == 0 {
				t.Errorf("no threads")
			}
			if res.Pause < res.Attach || res.Attach <= 0 {
				t.Errorf("timings: attach %s read %s detach %s pause %s", res.Attach, res.Read, res.Detach, res.Pause)
			}
			for _, g := range res.Goroutines {
				if g.ID <= 0 || g.State == "" {
					t.Errorf("bad goroutine %+v", g)
				}
			}
			tt.check(t, res)
			// A second capture works: the first one left nothing behind.
			if _, err := Capture(context.Background(), c.pid(), Options{}); err != nil {
				t.Fatalf("second capture: %v", err)
			}
			c.assertRunning()
		})
	}
}

func TestCaptureRefusesBeforeAttach(t *testing.T) {
	tests := []struct {
		name string
		path string
		args []string
		want error
		msg  string
	}{
		{"stripped", scenarioPath("sleeper-stripped"), nil, ErrNoDebugInfo, "-s or -w"},
		{"not-go", "/bin/sleep", []string{"1000"}, ErrNotGo, "no Go build information"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := os.Stat(tt.path); err != nil {
				t.Skip(err)
			}
			c := startChildNoReady(t, tt.path, nil, nil, tt.args...)
			if tt.name == "stripped" {
				c.waitReady(30 * time.Second)
			}
			noAttach(t)
			res, err := Capture(context.Background(), c.pid(), Options{})
			if !errors.Is(err, tt.want) || res != nil {
				t.Fatalf("got %v, %v; want %v", res, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			c.assertRunning()
		})
	}
}

func TestCaptureGone(t *testing.T) {
	c := startChild(t, scenarioPath("exit3"), nil)
	if !c.exited(30 * time.Second) {
		t.Fatal("exit3 did not exit")
	}
	noAttach(t)
	// Exited, not yet reaped: a zombie.
	if _, err := Capture(context.Background(), c.pid(), Options{}); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("zombie: got %v, want os.ErrProcessDone", err)
	}
	if code := c.reap().ExitCode(); code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	if _, err := Capture(context.Background(), c.pid(), Options{}); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("reaped: got %v, want os.ErrProcessDone", err)
	}
	if _, err := DumpCore(context.Background(), c.pid(), filepath.Join(t.TempDir(), "core")); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("dump core: got %v, want os.ErrProcessDone", err)
	}
}

func TestCapturePtraceRefused(t *testing.T) {
	c := startChild(t, scenarioPath("sleeper"), nil)
	// Trace the child from a locked thread of this process, so that the
	// capture meets another tracer.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.PtraceAttach(c.pid()); err != nil {
		t.Skipf("cannot ptrace here: %v", err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(c.pid(), &ws, unix.WALL, nil); err != nil {
		t.Fatal(err)
	}
	_, err := Capture(context.Background(), c.pid(), Options{})
	if derr := unix.PtraceDetach(c.pid()); derr != nil {
		t.Fatal(derr)
	}
	if !errors.Is(err, ErrPtrace) {
		t.Fatalf("got %v, want ErrPtrace", err)
	}
	if !strings.Contains(err.Error(), "already tracing") {
		t.Errorf("error %q does not name the other tracer", err)
	}
	c.assertRunning()
}

// stepClock advances by step at every reading.
type stepClock struct {
	now  time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time { c.now = c.now.Add(c.step); return c.now }

func TestCaptureBudget(t *testing.T) {
	c := startChild(t, scenarioPath("goroutines"), nil, "200")
	clk := &stepClock{now: time.Unix(0, 0), step: time.Millisecond}
	res, err := Capture(context.Background(), c.pid(), Options{Budget: 100 * time.Millisecond, Now: clk.Now})
	if !errors.Is(err, ErrBudget) {
		t.Fatalf("got %v, want ErrBudget", err)
	}
	if res == nil || !res.Truncated || len(res.Goroutines) == 0 || len(res.Goroutines) >= 200 {
		t.Fatalf("want a partial result, got %+v", res)
	}
	c.assertRunning()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Capture(ctx, c.pid(), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: got %v", err)
	}
	c.assertRunning()
}

// TestCaptureBudgetKeepsThreads: with the budget gone before the first
// goroutine is listed, the threads and the goroutine running on one (the
// culprit of a spin) are still read.
func TestCaptureBudgetKeepsThreads(t *testing.T) {
	c := startChild(t, scenarioPath("spin-nopreempt"), spinEnv)
	c.waitSpinning(30 * time.Second)
	clk := &stepClock{now: time.Unix(0, 0), step: time.Hour}
	res, err := Capture(context.Background(), c.pid(), Options{Budget: time.Minute, Now: clk.Now})
	if !errors.Is(err, ErrBudget) {
		t.Fatalf("got %v, want ErrBudget", err)
	}
	c.assertRunning()
	if len(res.Goroutines) != 1 {
		t.Fatalf("want only the goroutine on a thread, got:\n%s", dump(res))
	}
	checkSpin(t, res)
}

func TestCaptureLimits(t *testing.T) {
	c := startChild(t, scenarioPath("goroutines"), nil, "50")
	res, err := Capture(context.Background(), c.pid(), Options{MaxGoroutines: 10, MaxFrames: 3})
	if err != nil {
		t.Fatal(err)
	}
	c.assertRunning()
	if !res.Truncated {
		t.Errorf("not marked truncated")
	}
	// Goroutines on threads may come on top of the limit.
	if n := len(res.Goroutines); n < 10 || n > 10+len(res.Threads) {
		t.Errorf("%d goroutines, want 10 (+ up to %d on threads)", n, len(res.Threads))
	}
	for _, g := range res.Goroutines {
		if len(g.Frames) > 3 {
			t.Errorf("goroutine %d: %d frames, want at most 3", g.ID, len(g.Frames))
		}
	}
	full, err := Capture(context.Background(), c.pid(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if full.Truncated || len(withFrame(full, "main.park5")) != 50 {
		t.Errorf("full capture: truncated %v, %d goroutines in main.park5, want 50", full.Truncated, len(withFrame(full, "main.park5")))
	}
	for _, g := range withFrame(full, "main.park5") {
		want := []string{"main.park5", "main.park4", "main.park3", "main.park2", "main.park1"}
		i := frameIndex(g, "main.park5")
		for j, fn := range want {
			if i+j >= len(g.Frames) || g.Frames[i+j].Function != fn {
				t.Fatalf("goroutine %d: frames %v, want %v", g.ID, g.Frames, want)
			}
		}
	}
}

func TestDumpCoreReadCore(t *testing.T) {
	tests := []struct {
		scenario string
		env      []string
		check    func(*testing.T, *Result)
	}{
		{"spin-nopreempt", spinEnv, checkSpin},
		{"mutex-deadlock", nil, checkMutexDeadlock},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			c := startChild(t, scenarioPath(tt.scenario), tt.env)
			if tt.scenario == "spin-nopreempt" {
				c.waitSpinning(30 * time.Second)
			}
			core := filepath.Join(t.TempDir(), "core")
			pause, err := DumpCore(context.Background(), c.pid(), core)
			if err != nil {
				t.Fatal(err)
			}
			if pause <= 0 {
				t.Errorf("pause %s", pause)
			}
			c.assertRunning()
			c.kill()
			res, err := ReadCore(core, scenarioPath(tt.scenario), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Pause != 0 {
				t.Errorf("core read reports a pause of %s", res.Pause)
			}
			tt.check(t, res)
		})
	}
}

// With StopFirst the process is stopped before the attach and continued
// after the detach: the capture reads the same culprit and leaves it
// running, not stopped.
func TestStopFirst(t *testing.T) {
	c := startChild(t, scenarioPath("mutex-deadlock"), nil)
	res, err := Capture(context.Background(), c.pid(), Options{StopFirst: true})
	if err != nil {
		t.Fatal(err)
	}
	checkMutexDeadlock(t, res)
	c.assertRunning()
	core := filepath.Join(t.TempDir(), "core")
	if _, err := DumpCoreWith(context.Background(), c.pid(), core, Options{StopFirst: true}); err != nil {
		t.Fatal(err)
	}
	c.assertRunning()
}

// TestReadCoreCrash reads a core file the kernel wrote for a panic.
func TestReadCoreCrash(t *testing.T) {
	pattern, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil || strings.ContainsAny(strings.TrimSpace(string(pattern)), "|/%") {
		t.Skipf("core_pattern %q does not write a core into the working folder", pattern)
	}
	dir := t.TempDir()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &old); err != nil {
		t.Fatal(err)
	}
	// The limit is inherited by the child started while it is raised.
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}); err != nil {
		t.Skipf("cannot raise RLIMIT_CORE: %v", err)
	}
	c := startChildNoReady(t, scenarioPath("panic"), []string{"GOTRACEBACK=crash"}, func(cmd *exec.Cmd) {
		cmd.Dir = dir
		cmd.Stderr = nil
	})
	unix.Setrlimit(unix.RLIMIT_CORE, &old)
	st := c.waitExit(30 * time.Second)
	ws := st.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || !ws.CoreDump() {
		t.Skipf("no core dumped: %v", st)
	}
	cores, _ := filepath.Glob(filepath.Join(dir, "core*"))
	if len(cores) != 1 {
		t.Fatalf("core files %v", cores)
	}
	res, err := ReadCore(cores[0], scenarioPath("panic"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	culprits := res.Culprits()
	if len(culprits) != 1 || !hasFrame(culprits[0], "main.explode") {
		t.Fatalf("want the goroutine in main.explode as culprit, got %d culprits:\n%s", len(culprits), dump(res))
	}
}

// TestScenarioCrashes checks that the crashing scenarios die as documented
// in testdata/scenarios/README.md, naming their culprit function.
func TestScenarioCrashes(t *testing.T) {
	tests := []struct {
		scenario string
		code     int
		stderr   []string
	}{
		{"panic", 2, []string{"panic: scenario: explode", "main.explode("}},
		{"fatal-concurrent-map", 2, []string{"concurrent map writes", "main.scribble("}},
		{"nil-deref", 2, []string{"invalid memory address or nil pointer dereference", "main.derefNil("}},
		{"exit3", 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			var stderr strings.Builder
			c := startChildNoReady(t, scenarioPath(tt.scenario), []string{"GOTRACEBACK=all"}, func(cmd *exec.Cmd) { cmd.Stderr = &stderr })
			c.waitReady(30 * time.Second)
			if code := c.waitExit(30 * time.Second).ExitCode(); code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
		})
	}
}

func TestPreload(t *testing.T) {
	tests := []struct {
		name string
		path string
		want error
	}{
		{"ok", scenarioPath("sleeper"), nil},
		{"stripped", scenarioPath("sleeper-stripped"), ErrNoDebugInfo},
		{"not-go", "/bin/sh", ErrNotGo},
		{"text", "delve.go", ErrNotGo},
		{"missing", scenarioPath("no-such-program"), os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Preload(tt.path, nil)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				fi, _ := os.Stat(tt.path)
				if b.GoVersion != runtime.Version() || b.Size != fi.Size() {
					t.Errorf("got %+v", b)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheckGoVersion(t *testing.T) {
	tests := []struct {
		v  string
		ok bool
	}{
		{runtime.Version(), true},
		{"go1.25.0", true},
		{"go1.25rc1", true},
		{"go1.27.3", true},
		{"go1.24.9", false},
		{"go1.21.0", false},
		{"go1.28.0", false},
		{"go1.28rc1", false},
		{"go2.0.0", false},
		{"not-a-version", false},
	}
	for _, tt := range tests {
		err := checkGoVersion(tt.v)
		if tt.ok && err != nil {
			t.Errorf("%s: %v", tt.v, err)
		}
		if !tt.ok && !errors.Is(err, ErrGoVersion) {
			t.Errorf("%s: got %v, want ErrGoVersion", tt.v, err)
		}
	}
}

func TestWaitMS(t *testing.T) {
	const ms = int64(time.Millisecond)
	tests := []struct {
		status     uint64
		since, now int64
		want       int64
	}{
		{gWaiting, 1000 * ms, 3500 * ms, 2500},
		{gWaiting | gScan, 1000 * ms, 3500 * ms, 2500},
		{gSyscall, 1 * ms, 2 * ms, 1},
		{gWaiting, 0, 3500 * ms, 0},         // never seen blocked by a GC
		{gWaiting, 4000 * ms, 3500 * ms, 0}, // clock of another boot
		{gWaiting, 1000 * ms, 0, 0},         // now unknown
		{gRunning, 1000 * ms, 3500 * ms, 0}, // not blocked
		{1 /* runnable */, 1000 * ms, 3500 * ms, 0},
	}
	for _, tt := range tests {
		if got := waitMS(tt.status, tt.since, tt.now); got != tt.want {
			t.Errorf("waitMS(%#x, %d, %d) = %d, want %d", tt.status, tt.since, tt.now, got, tt.want)
		}
	}
}

func TestParseStatState(t *testing.T) {
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in   string
		want byte
		ok   bool
	}{
		{string(self), 0, true}, // any state
		{"42 (sleeper) S 1 42 42 0", 'S', true},
		{"42 (a) b) (c) Z 1", 'Z', true},
		{"42 (x)", 0, false},
		{"42 x S", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := parseStatState([]byte(tt.in))
		if (err == nil) != tt.ok || (tt.want != 0 && got != tt.want) {
			t.Errorf("parseStatState(%q) = %c, %v", tt.in, got, err)
		}
	}
}

func FuzzParseStatState(f *testing.F) {
	if self, err := os.ReadFile("/proc/self/stat"); err == nil {
		f.Add(self)
	}
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560"))
	f.Add([]byte("7 ((sd-pam)) S 6 6 6 0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseStatState(data)
		if err == nil && (st < 'A' || st > 'z') {
			t.Fatalf("accepted state %q", st)
		}
	})
}
