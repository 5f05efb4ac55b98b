package cluster

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkFailureDetection: time from a member's crash (no goodbye) to
// DIED on another member, median and p99 over 20 kills, beside the
// configured timeout (period 100 ms, timeout 1 s, three members).
func BenchmarkFailureDetection(b *testing.B) {
	const kills = 20
	cfg := testConfig("fd", freePorts(b, 3))
	cfg.Period, cfg.Timeout = 100*time.Millisecond, time.Second
	b.Run("base-configured-timeout", func(b *testing.B) {
		for b.Loop() {
		}
		b.ReportMetric(msOf(cfg.Timeout), "median-ms")
		b.ReportMetric(msOf(cfg.Timeout), "p99-ms")
	})
	b.Run("kill-to-died", func(b *testing.B) {
		var samples []time.Duration
		for b.Loop() {
			samples = samples[:0]
			a := startMember(b, cfg, 0, Options{})
			startMember(b, cfg, 1, Options{})
			victim := startMember(b, cfg, 2, Options{})
			a.rec.waitFor(b, 0, nodeID(3), Joined, time.Minute)
			for range kills {
				mark := a.rec.len()
				t0 := time.Now()
				victim.c.Kill()
				a.rec.waitFor(b, mark, nodeID(3), Died, time.Minute)
				samples = append(samples, time.Since(t0))
				mark = a.rec.len()
				victim = startMember(b, cfg, 2, Options{})
				a.rec.waitFor(b, mark, nodeID(3), Rebooted, time.Minute)
			}
			a.c.Kill()
		}
		slices.Sort(samples)
		b.ReportMetric(msOf(samples[len(samples)/2]), "median-ms")
		b.ReportMetric(msOf(samples[len(samples)*99/100]), "p99-ms")
	})
}

// BenchmarkConvergence: N members in one process on loopback ports;
// once all see all, one crashes. join-ms is the time until every member
// counts N members, converge-ms the time from the crash until every other
// member has reported it DIED. Each phase is bounded (joinBound,
// convergeBound); a phase that runs out reports the share of members that
// got there (joined-share, died-share) instead of failing, so the figure
// stays bounded on a loaded machine.
func BenchmarkConvergence(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("members-%d", n), func(b *testing.B) {
			for b.Loop() {
				convergeOnce(b, n)
			}
		})
	}
}

const (
	joinBound     = 90 * time.Second
	convergeBound = time.Minute
)

func convergeOnce(b *testing.B, n int) {
	ports := freePorts(b, n)
	cfg := testConfig("conv", ports)
	// Timers for a big cluster on a shared machine.
	cfg.Period, cfg.Timeout = time.Second, 10*time.Second
	var died atomic.Int64
	var killed atomic.Bool
	victim := nodeID(1) // started first, so always running
	var mu sync.Mutex
	var last time.Time
	reported := map[string]bool{}
	onChange := func(c Change) {
		// Count each member once, and only after the crash: a member
		// flapping under load before it is no convergence.
		if c.Flags&Died == 0 || c.Node.ID != victim || !killed.Load() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !reported[c.Cluster.MyID()] {
			reported[c.Cluster.MyID()] = true
			died.Add(1)
			last = time.Now()
		}
	}
	members := make([]*Cluster, n)
	defer func() {
		var wg sync.WaitGroup
		for _, c := range members {
			if c != nil {
				wg.Add(1)
				go func() { defer wg.Done(); c.Kill() }()
			}
		}
		wg.Wait()
	}()
	t0 := time.Now()
	deadline := time.Now().Add(joinBound)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		if time.Now().After(deadline) {
			break // the members not started count as not joined
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := Start(forNode(cfg, i), Options{MyID: cfg.Nodes[i].ID, OnChange: onChange})
			if err != nil {
				b.Error(err)
				return
			}
			mu.Lock()
			members[i] = c
			mu.Unlock()
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	joined := func() int {
		k := 0
		for _, c := range members {
			if c != nil && c.ml.NumMembers() == n {
				k++
			}
		}
		return k
	}
	for joined() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	b.ReportMetric(msOf(time.Since(t0)), "join-ms")
	b.ReportMetric(float64(joined())/float64(n), "joined-share")
	t1 := time.Now()
	killed.Store(true)
	members[0].Kill()
	deadline = time.Now().Add(convergeBound)
	for died.Load() < int64(n-1) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	if died.Load() >= int64(n-1) {
		b.ReportMetric(msOf(last.Sub(t1)), "converge-ms")
	} else {
		b.ReportMetric(msOf(time.Since(t1)), "converge-ms")
	}
	mu.Unlock()
	b.ReportMetric(float64(died.Load())/float64(n-1), "died-share")
}
