package stats

import (
	"io"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openhistogram/circonusllhist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// BenchmarkCounter: one increment of a registered counter beside a bare
// atomic add.
func BenchmarkCounter(b *testing.B) {
	b.Run("stats", func(b *testing.B) {
		c := NewRegistry().NS("b").Counter("n")
		b.ReportAllocs()
		for b.Loop() {
			c.Inc()
		}
	})
	b.Run("base-atomic", func(b *testing.B) {
		var n atomic.Uint64
		b.ReportAllocs()
		for b.Loop() {
			n.Add(1)
		}
	})
}

// BenchmarkHistogramRecord: one latency sample into a registered histogram
// beside a bare circonusllhist insert (its own locking off and on).
func BenchmarkHistogramRecord(b *testing.B) {
	d := []time.Duration{1234, 56789, 1234567, 98765432}
	b.Run("stats", func(b *testing.B) {
		h := NewRegistry().NS("b").Histogram("lat")
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			h.RecordDuration(d[i&3])
			i++
		}
	})
	b.Run("stats-float", func(b *testing.B) {
		h := NewRegistry().NS("b").Histogram("lat")
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			h.Record(d[i&3].Seconds())
			i++
		}
	})
	b.Run("base-circllhist-nolocks", func(b *testing.B) {
		h := circonusllhist.New(circonusllhist.NoLocks())
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_ = h.RecordDuration(d[i&3])
			i++
		}
	})
	b.Run("base-circllhist", func(b *testing.B) {
		h := circonusllhist.New()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_ = h.RecordDuration(d[i&3])
			i++
		}
	})
}

// BenchmarkScrape: one /metrics scrape of 10,000 series (9,000 counters and
// 1,000 gauges, 100 namespaces tagged by shard) beside client_golang's own
// registry holding the same series as CounterVec and GaugeVec.
func BenchmarkScrape(b *testing.B) {
	const shards, perShard = 100, 100
	scrape := func(b *testing.B, srv *httptest.Server) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	b.Run("stats", func(b *testing.B) {
		r := NewRegistry()
		for s := range shards {
			ns := r.NS("bench/shard/"+strconv.Itoa(s), Tag{"shard", strconv.Itoa(s)})
			for m := range perShard {
				if m < 90 {
					ns.Counter("c" + strconv.Itoa(m)).Add(uint64(m))
				} else {
					ns.Gauge("g" + strconv.Itoa(m)).Set(int64(m))
				}
			}
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(r.Collector())
		srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		defer srv.Close()
		scrape(b, srv)
	})
	b.Run("base-client_golang", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		for m := range perShard {
			name := "bench_shard_"
			if m < 90 {
				v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name + "c" + strconv.Itoa(m), Help: "x"}, []string{"shard"})
				reg.MustRegister(v)
				for s := range shards {
					v.WithLabelValues(strconv.Itoa(s)).Add(float64(m))
				}
			} else {
				v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name + "g" + strconv.Itoa(m), Help: "x"}, []string{"shard"})
				reg.MustRegister(v)
				for s := range shards {
					v.WithLabelValues(strconv.Itoa(s)).Set(float64(m))
				}
			}
		}
		srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		defer srv.Close()
		scrape(b, srv)
	})
}
