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

// BenchmarkConvergence: N members in one process on loopback ports
// (period 1 s, timeout 5 s); one crashes; the figure is the time until
// every other member has reported it DIED.
func BenchmarkConvergence(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("members-%d", n), func(b *testing.B) {
			for b.Loop() {
				convergeOnce(b, n)
			}
		})
	}
}

func convergeOnce(b *testing.B, n int) {
	ports := freePorts(b, n)
	cfg := testConfig("conv", ports)
	cfg.Period, cfg.Timeout = time.Second, 5*time.Second
	var died atomic.Int64
	victim := nodeID(n)
	var mu sync.Mutex
	var last time.Time
	onChange := func(c Change) {
		if c.Flags&Died != 0 && c.Node.ID == victim {
			died.Add(1)
			mu.Lock()
			last = time.Now()
			mu.Unlock()
		}
	}
	members := make([]*Cluster, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
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
			members[i] = c
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	defer func() {
		for _, c := range members {
			c.Kill()
		}
	}()
	t0 := time.Now()
	lastLog := time.Now()
	eventually(b, 2*time.Minute, "all members see all", func() bool {
		lo, hi := n, 0
		for _, c := range members {
			k := c.ml.NumMembers()
			lo, hi = min(lo, k), max(hi, k)
		}
		if time.Since(lastLog) > 5*time.Second {
			b.Logf("%v: members seen %d to %d", time.Since(t0).Round(time.Second), lo, hi)
			lastLog = time.Now()
		}
		return lo == n
	})
	b.ReportMetric(msOf(time.Since(t0)), "join-ms")
	t1 := time.Now()
	members[n-1].Kill()
	eventually(b, 5*time.Minute, "every member reports the crash", func() bool { return died.Load() >= int64(n-1) })
	mu.Lock()
	b.ReportMetric(msOf(last.Sub(t1)), "converge-ms")
	mu.Unlock()
}
