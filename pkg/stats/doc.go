// Package stats is the metrics registry: libmtev's stats namespaces
// (mtev/eventer/pool/<p>/cycletime, mtev/eventer/jobq/<q>/wait, ...) with
// counters, gauges and circonusllhist histograms, served as libmtev's
// /mtev/stats.json (JSON) and as Prometheus exposition.
//
// # Registering
//
// A Registry is a tree of Namespaces. Default is the process's registry;
// an application registers in one line:
//
//	var requests = stats.NewCounter("myapp/requests")
//	var latency = stats.NewHistogram("myapp/latency")
//	...
//	requests.Inc()
//	latency.RecordDuration(time.Since(t0))
//
// Asking again for the same name and kind returns the same metric; asking
// for a name taken by another kind panics (names come from code). Metrics
// kept elsewhere are registered with RegisterCounter, RegisterHistogram or
// read through CounterFunc, GaugeFunc and HistogramFunc.
//
// # Tags
//
// A namespace made without tags carries the tag <parent>:<name> (libmtev's
// mtev:eventer); one made with tags (NS("pool/default", Tag{"pool",
// "default"})) carries those instead, and a metric may carry tags of its
// own. A metric inherits the tags of every namespace above it, the app tag
// (SetApp) and, under "mtev", framework:mtev-supervise. The tagged JSON
// form lists them; the Prometheus form turns explicit tags into labels and
// the untagged namespaces into the metric name (see Collector).
//
// # Threads and costs
//
// Every method is safe for concurrent use. Recording (Counter.Inc,
// Gauge.Set, Histogram.Record...) is one atomic operation: no lock, no
// allocation; it never waits for a reader. Registration and reading take
// a namespace's lock briefly. Functions given to CounterFunc, GaugeFunc and
// HistogramFunc are called by readers on the reader's goroutine and must
// not block.
//
// # Histograms
//
// A Histogram has circonusllhist's bins (two significant decimal digits
// per power of ten) as a fixed array of atomic counters, from 1e-9 up to
// 1e10 of the metric's unit; latencies are recorded in seconds. Reading
// converts it into a circonusllhist.Histogram; a reset empties it (reads
// with reset use an atomic swap per bin, so no sample is lost or counted
// twice).
//
// # Where we differ from libmtev
//
//   - The framework tag is framework:mtev-supervise.
//   - A metric with tags of its own appears in the nested and simple forms
//     under the key name|ST[tags], so that series of one name do not
//     overwrite each other.
//   - Reset takes the kind to clear; DELETE /mtev/stats.json answers
//     {"stats_cleared": N} without libmtev's NUL byte.
package stats
