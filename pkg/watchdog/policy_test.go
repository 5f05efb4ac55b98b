package watchdog

import (
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

func TestBackoffGrowsCapsAndResets(t *testing.T) {
	b := newBackoff(Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second, BackoffReset: 10 * time.Second})
	b.rand = func() float64 { return 0.5 } // no jitter: factor 1.0
	short := time.Millisecond
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.next(short); got != w*time.Millisecond {
			t.Fatalf("death %d: delay %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := b.next(10 * time.Second); got != 100*time.Millisecond {
		t.Fatalf("after a stable run: delay %v, want the minimum", got)
	}
	if got := b.next(short); got != 200*time.Millisecond {
		t.Fatalf("second short run after reset: %v, want 200ms", got)
	}
}

func TestBackoffJitterStaysInBounds(t *testing.T) {
	for _, r := range []float64{0, 0.25, 0.999} {
		b := newBackoff(Config{BackoffMin: time.Second, BackoffMax: 10 * time.Second, BackoffReset: time.Minute})
		b.rand = func() float64 { return r }
		got := b.next(0)
		if got < 800*time.Millisecond || got > 1200*time.Millisecond {
			t.Fatalf("rand %v: delay %v outside ±20%% of 1s", r, got)
		}
	}
	b := newBackoff(Config{BackoffMin: time.Second, BackoffMax: time.Second, BackoffReset: time.Minute})
	b.rand = func() float64 { return 0.999 }
	if got := b.next(0); got > time.Second {
		t.Fatalf("jitter pushed delay %v past the cap", got)
	}
}

func TestZeroBackoff(t *testing.T) {
	b := newBackoff(Config{ZeroBackoff: true, BackoffMax: time.Second})
	for range 5 {
		if d := b.next(0); d != 0 {
			t.Fatalf("zero backoff gave %v", d)
		}
	}
}

func TestCrashLoop(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name   string
		n      int
		span   time.Duration
		deaths []time.Duration // offsets from t0
		want   []bool
	}{
		{"fifth death in span gives up", 5, time.Minute, []time.Duration{0, 1, 2, 3, 4}, []bool{false, false, false, false, true}},
		{"spread out never gives up", 3, 10 * time.Second, []time.Duration{0, 6, 12, 18, 24}, []bool{false, false, false, false, false}},
		{"window slides", 3, 10 * time.Second, []time.Duration{0, 20, 21, 22}, []bool{false, false, false, true}},
		{"limit of one", 1, time.Second, []time.Duration{0}, []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCrashLoop(tt.n, tt.span)
			for i, d := range tt.deaths {
				if got := c.record(t0.Add(d * time.Second)); got != tt.want[i] {
					t.Fatalf("death %d: limit %v, want %v", i+1, got, tt.want[i])
				}
			}
		})
	}
}

func TestCrashLoopWouldReachMatchesRecord(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, n := range []int{1, 2, 3, 5} {
		c := newCrashLoop(n, 10*time.Second)
		for i, off := range []int{0, 1, 2, 30, 31, 32, 33, 34, 35} {
			at := t0.Add(time.Duration(off) * time.Second)
			predicted := c.wouldReach(at)
			if got := c.record(at); got != predicted {
				t.Fatalf("n=%d death %d: wouldReach %v, record %v", n, i, predicted, got)
			}
		}
	}
}

// The one policy function, for every kind of incident.
func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    outcome
		want trace.Action
	}{
		{"soft stall", outcome{soft: true, limit: true, ending: true}, trace.ActionKeepRunning},
		{"stopping", outcome{ending: true, restart: RestartAlways}, trace.ActionStop},
		{"never", outcome{restart: RestartNever}, trace.ActionStop},
		{"on-failure, clean", outcome{restart: RestartOnFailure, clean: true}, trace.ActionStop},
		{"on-failure, failed", outcome{restart: RestartOnFailure}, trace.ActionRestart},
		{"always, clean", outcome{restart: RestartAlways, clean: true}, trace.ActionRestart},
		{"limit", outcome{restart: RestartAlways, limit: true}, trace.ActionGiveUp},
		{"limit, never", outcome{restart: RestartNever, limit: true}, trace.ActionStop},
	} {
		if got := decide(tc.o); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
