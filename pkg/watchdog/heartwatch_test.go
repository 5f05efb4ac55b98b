package watchdog

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/trace/delve"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/hearts"
)

const testChildEnv = "MTEV_WATCHDOG_TEST_CHILD"

// heartChild is the test binary run as a linked child: it joins the heart
// table, answers dump requests, beats a few times and then hangs its loop.
func heartChild() int {
	t, err := hearts.OpenFromEnv()
	if err != nil {
		os.Stderr.WriteString("heart child: " + err.Error() + "\n")
		return 1
	}
	h, err := t.NewHeart("e:test/0", 0)
	if err != nil {
		os.Stderr.WriteString("heart child: " + err.Error() + "\n")
		return 1
	}
	if os.Getenv(testChildEnv) == "heart" {
		go dump.ServeFromEnv(context.Background(), dump.Options{})
	} // "heart-silent": joins the table but never answers a dump request
	for range 20 {
		h.Beat()
		time.Sleep(5 * time.Millisecond)
	}
	pprof.Do(context.Background(), pprof.Labels("mtev.heart", "e:test/0"), func(context.Context) { stuckInLoop() })
	return 0
}

var stuck sync.Mutex

//go:noinline
func stuckInLoop() {
	stuck.Lock()
	stuck.Lock() // the loop hangs here: its heart stops
}

// A linked child whose loop hangs is caught at the soft deadline (captured
// through its own dump, kept running), then at the hard deadline (captured,
// killed, restarted). Both records name the heart and the goroutine.
func TestHeartStallSoftThenHard(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Name:         "linked",
		Command:      []string{exe, "-test.run=^$"},
		Env:          []string{testChildEnv + "=heart"},
		HeartTimeout: 200 * time.Millisecond,
		HeartGrace:   400 * time.Millisecond,
		ZeroBackoff:  true,
		Retries:      100,
	}
	s, ev := newTestSupervisor(t, cfg)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	waitFor(t, "a second start after the hard stall", func() bool {
		return ev.count(func(e Event) bool { x, ok := e.(Started); return ok && x.StartCount == 2 }) > 0
	})
	waitFor(t, "two records", func() bool {
		return ev.count(func(e Event) bool { _, ok := e.(Recorded); return ok }) >= 2
	})
	s.Stop()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	recs := readRecords(t, s.cfg.StateDir)
	if len(recs) < 2 {
		t.Fatalf("%d records", len(recs))
	}
	soft, hard := recs[0], recs[1]
	for _, tc := range []struct {
		rec    *trace.Record
		stage  trace.Stage
		action trace.Action
	}{{soft, "soft", trace.ActionKeepRunning}, {hard, "hard", trace.ActionRestart}} {
		r := tc.rec
		if r.Reason != trace.ReasonStall || r.Stall == nil || r.Stall.Stage != tc.stage || r.Action != tc.action {
			t.Fatalf("record %s: reason %s stall %+v action %s", r.ID, r.Reason, r.Stall, r.Action)
		}
		if r.Stall.Heart != "e:test/0" || r.Stall.Source != "heart" || r.Stall.ThreadID == 0 {
			t.Fatalf("record %s: stall %+v", r.ID, r.Stall)
		}
		if r.Capture == nil || r.Capture.Method != "cooperative" {
			t.Fatalf("record %s: capture %+v", r.ID, r.Capture)
		}
		c := trace.Culprit(r)
		if c == nil && len(r.Artifacts) > 0 {
			b, _ := os.ReadFile(r.Artifacts[0].Path)
			t.Logf("dump %s:\n%.3000s", r.Artifacts[0].Path, b)
			t.Logf("goroutines: %+v", r.Goroutines)
		}
		if c == nil || !strings.Contains(c.Frames[0].Function+frameNames(c.Frames), "stuckInLoop") {
			t.Fatalf("record %s: culprit %+v", r.ID, c)
		}
		if len(r.Artifacts) == 0 {
			t.Fatalf("record %s: no dump files kept", r.ID)
		}
		if r.Fingerprint == "" {
			t.Fatalf("record %s: no fingerprint", r.ID)
		}
		if len(r.Threads) == 0 || r.Threads[0].State == "" || r.Resources == nil || r.Resources.Threads == 0 {
			t.Fatalf("record %s: threads %+v resources %+v", r.ID, r.Threads, r.Resources)
		}
	}
	if soft.PID != hard.PID {
		t.Fatalf("soft stall pid %d, hard stall pid %d: the soft stage must not kill", soft.PID, hard.PID)
	}
}

func frameNames(fs []trace.Frame) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.Function + " ")
	}
	return b.String()
}

// A child that never creates a heart is caught by the start-up deadline
// when hearts are required (libmtev never watches a heart before its first
// beat).
func TestHeartsRequiredStartupStall(t *testing.T) {
	s, _ := newTestSupervisor(t, Config{
		Command:        []string{"sleep", "1000"},
		Hearts:         HeartsRequire,
		StartupTimeout: 200 * time.Millisecond,
		Restart:        RestartNever,
	})
	err := s.Serve(context.Background())
	var ce *ChildExitError
	if !errors.As(err, &ce) || ce.Exit.Signal != "SIGKILL" {
		t.Fatalf("Serve: %v, want the child killed", err)
	}
	recs := readRecords(t, s.cfg.StateDir)
	if len(recs) != 1 || recs[0].Stall == nil || recs[0].Stall.Source != "startup" || recs[0].Stall.Stage != "hard" {
		t.Fatalf("records: %+v", recs)
	}
	if recs[0].Capture == nil || recs[0].Capture.Method != "none" || recs[0].Capture.Error == "" {
		t.Fatalf("capture of a child with no dump server: %+v", recs[0].Capture)
	}
}

// The executable check runs once per file version.
func TestPreloadCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prog")
	os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755)
	var p preloadCache
	err1 := p.check(path)
	if !errors.Is(err1, delve.ErrNotGo) {
		t.Fatalf("a shell script: %v, want ErrNotGo", err1)
	}
	first := p.seen[path]
	if err := p.check(path); err == nil || err.Error() != err1.Error() {
		t.Fatalf("second check: %v, want %v", err, err1)
	}
	os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	p.check(path)
	if p.seen[path].size == first.size {
		t.Fatal("a changed file was not checked again")
	}
	if err := p.check(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// A hard deadline that passes while the soft stage's capture still runs
// waits for it: one capture at a time (one tracer, one dump request), so
// the hard capture starts only when the soft one is done.
func TestHardStallWaitsForSoftCapture(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s, ev := newTestSupervisor(t, Config{
		Name:         "slowdump",
		Command:      []string{exe, "-test.run=^$"},
		Env:          []string{testChildEnv + "=heart-silent"},
		HeartTimeout: 100 * time.Millisecond,
		HeartGrace:   50 * time.Millisecond,
		DumpBudget:   500 * time.Millisecond,
		Restart:      RestartNever,
	})
	if err := s.Serve(context.Background()); err == nil {
		t.Fatal("Serve: want the child killed")
	}
	recs := readRecords(t, s.cfg.StateDir)
	if len(recs) != 2 || recs[0].Stall.Stage != "soft" || recs[1].Stall.Stage != "hard" {
		t.Fatalf("records: %d %+v", len(recs), recs)
	}
	soft, hard := recs[0], recs[1]
	softEnd := soft.Time.Add(time.Duration(soft.Capture.DurationMS) * time.Millisecond)
	if hard.Time.Before(softEnd) {
		t.Fatalf("hard capture began %v before the soft one ended", softEnd.Sub(hard.Time))
	}
	if soft.Capture.Attempts[0].Method != "cooperative" || soft.Capture.Attempts[0].Error == "" {
		t.Fatalf("soft capture: %+v", soft.Capture)
	}
	if n := ev.count(func(e Event) bool { _, ok := e.(Stalled); return ok }); n != 2 {
		t.Fatalf("%d stall events", n)
	}
}

// A hard stall that reaches the crash-loop limit is recorded as give-up,
// as a crash would be, and Serve ends with ErrCrashLoop.
func TestHardStallAtCrashLoopLimitGivesUp(t *testing.T) {
	s, _ := newTestSupervisor(t, Config{
		Command:        []string{"sleep", "1000"},
		Hearts:         HeartsRequire,
		StartupTimeout: 150 * time.Millisecond,
		ZeroBackoff:    true,
		Retries:        2,
		Span:           time.Hour,
	})
	err := s.Serve(context.Background())
	if !errors.Is(err, ErrCrashLoop) {
		t.Fatalf("Serve: %v, want ErrCrashLoop", err)
	}
	recs := readRecords(t, s.cfg.StateDir)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	if recs[0].Reason != trace.ReasonStall || recs[0].Action != trace.ActionRestart {
		t.Fatalf("first record: reason %s action %s, want stall/restart", recs[0].Reason, recs[0].Action)
	}
	if recs[1].Reason != trace.ReasonStall || recs[1].Action != trace.ActionGiveUp {
		t.Fatalf("second record: reason %s action %s, want stall/give-up", recs[1].Reason, recs[1].Action)
	}
}

// A hard stall captured through a core: the child is killed once its core
// is written and the core is read afterwards, so the death is handled
// before the capture ends. The action is still decided before the death
// counts, and the record of the last stall, which ends Serve at the
// crash-loop limit, is still written.
func TestCoreCaptureOutlivesChild(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "goroutines")
	if out, err := exec.Command("go", "build", "-o", exe, "../../testdata/scenarios/goroutines").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	s, _ := newTestSupervisor(t, Config{
		Command:        []string{exe, "100"},
		Notify:         true,
		Hearts:         HeartsOff,
		StartupTimeout: 500 * time.Millisecond,
		ZeroBackoff:    true,
		Retries:        2,
		Span:           time.Hour,
		CoreAboveRSS:   1,
	})
	if err := s.Serve(context.Background()); !errors.Is(err, ErrCrashLoop) {
		t.Fatalf("Serve: %v, want ErrCrashLoop", err)
	}
	recs := readRecords(t, s.cfg.StateDir)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	for i, want := range []trace.Action{trace.ActionRestart, trace.ActionGiveUp} {
		r := recs[i]
		if r.Action != want || r.Capture == nil || r.Capture.Method != trace.MethodDelveCore {
			t.Fatalf("record %d: action %s capture %+v, want %s through delve-core", i+1, r.Action, r.Capture, want)
		}
		if f, ok := trace.CulpritFrame(trace.Culprit(r)); !ok || !strings.Contains(f.Function, "main.") {
			t.Fatalf("record %d: culprit %+v", i+1, f)
		}
	}
}
