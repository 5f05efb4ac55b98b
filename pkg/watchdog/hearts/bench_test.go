package hearts

import (
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkBeat compares a heartbeat with a plain atomic store to heap
// memory. heart is Beat as shipped (an atomic add through the heart's slot
// pointer); slot-store and slot-add are the bare operations on the mapped
// slot, the two candidates for Beat.
func BenchmarkBeat(b *testing.B) {
	tbl, _ := newTestTable(b, 4)
	h, err := tbl.NewHeart("bench", 0)
	if err != nil {
		b.Fatal(err)
	}
	s := tbl.slot(h.Slot())
	b.Run("base-atomic-heap", func(b *testing.B) {
		v := new(atomic.Uint64)
		var i uint64
		for b.Loop() {
			i++
			v.Store(i)
		}
	})
	b.Run("heart", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.Beat()
		}
	})
	b.Run("slot-store", func(b *testing.B) {
		var i uint64
		for b.Loop() {
			i++
			s.ticker.Store(i)
		}
	})
	b.Run("slot-add", func(b *testing.B) {
		for b.Loop() {
			s.ticker.Add(1)
		}
	})
}

// detectSamples is the number of stalls measured per sub-benchmark.
const detectSamples = 40

// BenchmarkDetect measures detection overshoot: a real child beats a heart
// with a 100 ms timeout every millisecond, stops on command, and the parent
// polls a Monitor until the soft stall; the overshoot is the time from the
// child's last beat to the detection, minus the timeout. heart polls at
// PollInterval (5 ms here); base-libmtev-77ms-poll polls at libmtev's fixed
// 77 ms. Each run measures detectSamples stalls whatever b.N is.
func BenchmarkDetect(b *testing.B) {
	const timeout = 100 * time.Millisecond
	for _, bc := range []struct {
		name string
		poll func(*Monitor) time.Duration
	}{
		{"heart", (*Monitor).PollInterval},
		{"base-libmtev-77ms-poll", func(*Monitor) time.Duration { return MaxPollInterval }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tbl, f := newTestTable(b, 4)
			c := startChild(b, f)
			c.line()
			c.newHeart("new", "bench", timeout)
			m := NewMonitor(tbl, MonitorConfig{DefaultTimeout: timeout, Grace: time.Hour})
			waitBeating(b, m, "bench")
			var over []float64
			for b.Loop() {
				over = over[:0]
				for range detectSamples {
					f := c.do("stop bench")
					ns, err := strconv.ParseInt(f[1], 10, 64)
					if err != nil {
						b.Fatalf("child answered %q", f)
					}
					last := time.Unix(0, ns)
					var detected time.Time
					for detected.IsZero() {
						time.Sleep(bc.poll(m))
						now := time.Now()
						for _, e := range m.Check(now) {
							if e.Kind == SoftStall {
								detected = now
							}
						}
					}
					over = append(over, float64(detected.Sub(last)-timeout)/1e6)
					c.do("start bench")
					m.Check(time.Now()) // sees the beat, re-arms
				}
			}
			slices.Sort(over)
			b.ReportMetric(over[len(over)/2], "median-ms")
			b.ReportMetric(over[(len(over)*99+99)/100-1], "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
