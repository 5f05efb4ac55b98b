package eventer

import (
	"strconv"
	"strings"

	"github.com/mtev-supervise/mtev-supervise/pkg/stats"
	"github.com/openhistogram/circonusllhist"
)

// Stats registered under Options.Stats (libmtev's mtev/eventer namespace):
//
//	pool/<p>/cycletime            histogram, the pool's loops merged (pool:<p>)
//	pool/<p>/callbacks            counter, callbacks run
//	pool/<p>/slow                 counter, callbacks past the slow threshold
//	threads/<p>.<i>/cycletime     histogram of one loop (thread:e:<p>/<i>)
//	callbacks/<cb>/latency        histogram per pool (callback:<cb>, pool:<p>)
//	jobq/<q>/wait, jobq/<q>/latency   histograms (jobq:<q>)
//	jobq/<q>/{added,started,completed,rejected,timeouts,cancelled,slow}  counters
//	jobq/<q>/{backlog,inflight,concurrency}                          gauges
//
// A callback's histogram is registered when the callback is first made.

// nsName makes a name usable as one namespace element.
func nsName(s string) string { return strings.ReplaceAll(s, "/", "_") }

func (p *Pool) registerStats(ns *stats.Namespace) {
	if ns == nil {
		return
	}
	p.stats = ns
	pn := ns.NS("pool/"+nsName(p.name), stats.Tag{Key: "pool", Value: p.name})
	_ = pn.HistogramFunc("cycletime", func() *circonusllhist.Histogram {
		h := p.loops[0].cycle.histogram()
		for _, l := range p.loops[1:] {
			h.Merge(l.cycle.histogram())
		}
		return h
	})
	_ = pn.CounterFunc("callbacks", func() uint64 {
		var n uint64
		for _, l := range p.loops {
			n += l.callbacks.Load()
		}
		return n
	})
	_ = pn.CounterFunc("slow", func() uint64 {
		var n uint64
		for _, l := range p.loops {
			n += l.slow.Load()
		}
		return n
	})
	for _, l := range p.loops {
		tn := ns.NS("threads/"+nsName(p.name)+"."+strconv.Itoa(l.index), stats.Tag{Key: "thread", Value: l.name})
		_ = tn.RegisterHistogram("cycletime", &l.cycle.Histogram)
	}
}

// registerCallback registers a callback's histogram; called once per
// callback, when it is made.
func (p *Pool) registerCallback(c *callback) {
	if p.stats == nil {
		return
	}
	cn := p.stats.NS("callbacks/"+nsName(c.name), stats.Tag{Key: "callback", Value: c.name})
	_ = cn.RegisterHistogram("latency", &c.lat.Histogram, stats.Tag{Key: "pool", Value: p.name})
}

func (q *Queue) registerStats(ns *stats.Namespace) {
	if ns == nil {
		return
	}
	qn := ns.NS("jobq/"+nsName(q.name), stats.Tag{Key: "jobq", Value: q.name})
	_ = qn.RegisterHistogram("wait", &q.wait.Histogram)
	_ = qn.RegisterHistogram("latency", &q.run.Histogram)
	for name, c := range map[string]func() uint64{
		"added": q.added.Load, "started": q.started.Load, "completed": q.completed.Load,
		"rejected": q.rejected.Load, "timeouts": q.deadlines.Load, "cancelled": q.cancelled.Load,
		"slow": q.slowJobs.Load,
	} {
		_ = qn.CounterFunc(name, c)
	}
	_ = qn.GaugeFunc("inflight", func() float64 { return float64(q.running.Load()) })
	_ = qn.GaugeFunc("backlog", func() float64 {
		q.mu.Lock()
		defer q.mu.Unlock()
		return float64(q.backlog)
	})
	_ = qn.GaugeFunc("concurrency", func() float64 {
		q.mu.Lock()
		defer q.mu.Unlock()
		return float64(q.concurrency)
	})
}
