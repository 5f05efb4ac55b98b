package watchdog

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// fakeClock is a clock whose time moves only when a test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c      *fakeClock
	ch     chan time.Time
	at     time.Time
	active bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{c: f, ch: make(chan time.Time, 1), at: f.now.Add(d), active: true}
	f.timers = append(f.timers, t)
	f.fireLocked()
	return t
}

// Advance moves the time on and fires the timers that are due.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.fireLocked()
}

func (f *fakeClock) fireLocked() {
	for _, t := range f.timers {
		if t.active && !t.at.After(f.now) {
			t.active = false
			select {
			case t.ch <- f.now:
			default:
			}
		}
	}
}

// pending returns the due times of the armed timers.
func (f *fakeClock) pending() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for _, t := range f.timers {
		if t.active {
			out = append(out, t.at.Sub(f.now))
		}
	}
	return out
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.at, t.active = t.c.now.Add(d), true
	t.c.fireLocked()
	return was
}

// fakeSupervisor is a supervisor on a fake clock.
func fakeSupervisor(t *testing.T, cfg Config) (*Supervisor, *events, *fakeClock) {
	t.Helper()
	s, ev := newTestSupervisor(t, cfg)
	fc := newFakeClock()
	s.clock = fc
	s.opts.Now = fc.Now
	return s, ev, fc
}

func countEvents[T Event](ev *events) int {
	return ev.count(func(e Event) bool { _, ok := e.(T); return ok })
}

// The restart backoff waits in fake hours: nothing restarts until the
// clock passes the delay, the delay doubles for each short run (with its
// jitter), and three deaths within the span give up with give-up
// recorded.
func TestBackoffAndCrashLoopOnFakeClock(t *testing.T) {
	s, ev, fc := fakeSupervisor(t, Config{
		Command:    []string{"sh", "-c", "exit 1"},
		Restart:    RestartAlways,
		BackoffMin: time.Hour, BackoffMax: 3 * time.Hour, BackoffReset: 24 * time.Hour,
		Retries: 3, Span: 10 * time.Hour,
	})
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	for i, want := range []time.Duration{time.Hour, 2 * time.Hour} {
		waitFor(t, "a restart scheduled", func() bool { return countEvents[RestartScheduled](ev) == i+1 })
		var d time.Duration
		waitFor(t, "the restart timer", func() bool {
			p := fc.pending()
			if len(p) == 1 {
				d = p[0]
			}
			return len(p) == 1
		})
		if d < want*8/10 || d > want*12/10 {
			t.Fatalf("restart %d: delay %v, want %v ±20%%", i+1, d, want)
		}
		if n := countEvents[Started](ev); n != i+1 {
			t.Fatalf("started %d times before the delay passed, want %d", n, i+1)
		}
		fc.Advance(d - time.Minute)
		if n := countEvents[Started](ev); n != i+1 {
			t.Fatalf("started %d times a minute before the delay, want %d", n, i+1)
		}
		fc.Advance(time.Minute)
		waitFor(t, "the restart", func() bool { return countEvents[Started](ev) == i+2 })
	}
	if err := <-done; !errors.Is(err, ErrCrashLoop) {
		t.Fatalf("Serve: %v, want ErrCrashLoop", err)
	}
	recs := readRecords(t, s.cfg.StateDir)
	if len(recs) != 3 || recs[0].Action != trace.ActionRestart || recs[1].Action != trace.ActionRestart || recs[2].Action != trace.ActionGiveUp {
		t.Fatalf("records: %d %v", len(recs), recs)
	}
	// The first delay is an hour with ±20% jitter: at least 48 fake
	// minutes separate the two deaths.
	if !recs[1].Time.After(recs[0].Time.Add(45 * time.Minute)) {
		t.Fatalf("records stamped %v and %v: not on the fake clock", recs[0].Time, recs[1].Time)
	}
}

// Deaths farther apart than the span never reach the crash-loop limit.
func TestCrashLoopSpanOnFakeClock(t *testing.T) {
	s, ev, fc := fakeSupervisor(t, Config{
		Command:    []string{"sh", "-c", "exit 1"},
		Restart:    RestartAlways,
		BackoffMin: 2 * time.Hour, BackoffMax: 2 * time.Hour,
		Retries: 2, Span: time.Hour,
	})
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	for i := 1; i <= 4; i++ {
		waitFor(t, "a restart scheduled", func() bool { return countEvents[RestartScheduled](ev) == i })
		waitFor(t, "the restart timer", func() bool { return len(fc.pending()) == 1 })
		fc.Advance(3 * time.Hour)
		waitFor(t, "the restart", func() bool { return countEvents[Started](ev) == i+1 })
	}
	s.Stop()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	for _, r := range readRecords(t, s.cfg.StateDir) {
		if r.Action == trace.ActionGiveUp {
			t.Fatalf("record %s gave up: deaths were 2 h apart, span 1 h", r.ID)
		}
	}
}

// The start-up deadline passes in fake time: the child is captured,
// killed, and the record says stall/startup.
func TestStartupDeadlineOnFakeClock(t *testing.T) {
	s, ev, fc := fakeSupervisor(t, Config{
		Command:        []string{"sleep", "1000"},
		Notify:         true,
		Hearts:         HeartsOff,
		StartupTimeout: time.Hour,
		Restart:        RestartNever,
	})
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	waitFor(t, "the start-up timer", func() bool { return countEvents[Started](ev) == 1 && len(fc.pending()) == 1 })
	fc.Advance(59 * time.Minute)
	if n := countEvents[Stalled](ev); n != 0 {
		t.Fatalf("%d stalls a minute before the deadline", n)
	}
	fc.Advance(time.Minute)
	err := <-done
	var ce *ChildExitError
	if !errors.As(err, &ce) || ce.Exit.Signal != "SIGKILL" {
		t.Fatalf("Serve: %v, want the child killed", err)
	}
	recs := readRecords(t, s.cfg.StateDir)
	if len(recs) != 1 || recs[0].Stall == nil || recs[0].Stall.Source != "startup" || recs[0].Stall.AgeMS != time.Hour.Milliseconds() {
		t.Fatalf("records: %+v", recs)
	}
}
