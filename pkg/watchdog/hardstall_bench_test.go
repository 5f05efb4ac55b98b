package watchdog

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// BenchmarkHardStall: from a hard deadline to the replacement child's
// start, for a child of MTEV_BENCH_GOROUTINES (default 100,000) parked
// goroutines that missed its start-up deadline. "core" writes a core of
// the stopped child, kills it, starts the replacement and reads the core
// afterwards; "base-live" captures the live child with Delve first, then
// kills it. Run with -benchtime=1x.
func BenchmarkHardStall(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(getenvDefault("MTEV_BENCH_GOROUTINES", "100000")); err == nil {
		n = v
	}
	exe := filepath.Join(b.TempDir(), "goroutines")
	if out, err := exec.Command("go", "build", "-o", exe, "../../testdata/scenarios/goroutines").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(b *testing.B, coreAbove uint64) {
		var total time.Duration
		for range b.N {
			total += hardStallToStart(b, exe, n, coreAbove)
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "deadline-to-child-ms")
	}
	b.Run("core", func(b *testing.B) { run(b, 1) })
	b.Run("base-live", func(b *testing.B) { run(b, 1<<62) })
}

func getenvDefault(k, def string) string {
	if v := lookupEnv(realSys().environ(), k); v != "" {
		return v
	}
	return def
}

// hardStallToStart runs one child to its start-up deadline and returns the
// time from the Stalled event to the replacement's Started event.
func hardStallToStart(b *testing.B, exe string, n int, coreAbove uint64) time.Duration {
	var mu sync.Mutex
	var ready bool
	var stalledAt, startedAt time.Time
	restarted := make(chan struct{})
	dir := b.TempDir()
	s, err := New(Config{
		Name:           "hardstall",
		Command:        []string{exe, strconv.Itoa(n)},
		StateDir:       dir,
		Notify:         true,
		Hearts:         HeartsOff,
		StartupTimeout: 10 * time.Second,
		Restart:        RestartAlways,
		ZeroBackoff:    true,
		Retries:        100,
		CoreAboveRSS:   coreAbove,
		CaptureBudget:  5 * time.Minute,
	}, Options{
		Output: func(l Line) {
			if string(l.Text) == "ready" {
				mu.Lock()
				ready = true
				mu.Unlock()
			}
		},
		Events: func(e Event) {
			mu.Lock()
			defer mu.Unlock()
			switch e := e.(type) {
			case Stalled:
				stalledAt = time.Now()
			case Started:
				if e.StartCount == 2 {
					startedAt = time.Now()
					close(restarted)
				}
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	select {
	case <-restarted:
	case <-time.After(10 * time.Minute):
		b.Fatal("no restart")
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if !ready {
		b.Fatal("the child was not ready (all goroutines parked) by its deadline: raise StartupTimeout")
	}
	recs := readRecords(b, dir)
	if len(recs) == 0 || recs[0].Capture == nil || len(recs[0].Goroutines) == 0 {
		b.Fatalf("no capture recorded: %+v", recs)
	}
	want := trace.MethodDelve
	if coreAbove == 1 {
		want = trace.MethodDelveCore
	}
	if recs[0].Capture.Method != want {
		b.Fatalf("capture %s, want %s: %+v", recs[0].Capture.Method, want, recs[0].Capture)
	}
	return startedAt.Sub(stalledAt)
}
