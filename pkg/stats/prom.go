package stats

import (
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/openhistogram/circonusllhist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// promSeries is how a metric appears to Prometheus; computed once.
type promSeries struct {
	desc   *prometheus.Desc
	values []string
	labels []*dto.LabelPair // sorted, shared read-only by every scrape
}

// scalar is a counter or gauge sample written straight from the cached
// series, without the label work of prometheus.NewConstMetric.
type scalar struct {
	s       *promSeries
	counter bool
	v       float64
}

func (m *scalar) Desc() *prometheus.Desc { return m.s.desc }

func (m *scalar) Write(out *dto.Metric) error {
	out.Label = m.s.labels
	if m.counter {
		out.Counter = &dto.Counter{Value: &m.v}
	} else {
		out.Gauge = &dto.Gauge{Value: &m.v}
	}
	return nil
}

// Collector returns a prometheus.Collector over the registry. It is
// unchecked (it describes nothing ahead), since metrics come and go.
//
// Names: the names of the namespaces above a metric that carry no tags of
// their own, then the metric's name, joined with "_" and with every
// character Prometheus does not allow replaced by "_":
// mtev/eventer/jobq/<q>/wait, with <q> tagged jobq:<q>, becomes
// mtev_eventer_jobq_wait{jobq="<q>"}. Labels: the tags of tagged
// namespaces and the metric's own (the default <parent>:<name> tags are
// already in the name; the app tag is not repeated).
//
// Counters become counters, gauges gauges, and circonusllhist histograms
// classic Prometheus histograms whose buckets are the circonusllhist bins
// that hold samples: a sample in bin [1.2e-05, 1.3e-05) counts in every
// bucket with le >= 1.3e-05. Bucket bounds are therefore exact bin edges
// (two significant digits) rather than a fixed layout; a bucket appears
// once a sample lands in it. The sum is circonusllhist's approximation
// (each sample at its bin's midpoint).
func (r *Registry) Collector() prometheus.Collector { return collector{r} }

type collector struct{ r *Registry }

func (collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.r.walk(func(path []*Namespace, m *metric) {
		ps := m.prom.Load()
		if ps == nil {
			ps = newPromSeries(path, m)
			m.prom.Store(ps)
		}
		var pm prometheus.Metric
		var err error
		switch m.kind {
		case KindCounter:
			pm = &scalar{s: ps, counter: true, v: m.float()}
		case KindGauge:
			pm = &scalar{s: ps, v: m.float()}
		case KindHistogram:
			var count uint64
			var sum float64
			var buckets map[float64]uint64
			if m.hist != nil {
				count, sum, buckets = promBuckets(m.hist)
			} else {
				count, sum, buckets = promBucketsLLHist(m.histogram(false))
			}
			pm, err = prometheus.NewConstHistogram(ps.desc, count, sum, buckets, ps.values...)
		}
		if err != nil {
			pm = prometheus.NewInvalidMetric(ps.desc, err)
		}
		ch <- pm
	})
}

func newPromSeries(path []*Namespace, m *metric) *promSeries {
	var name strings.Builder
	var keys, values []string
	addTag := func(t Tag) {
		k := promName(t.Key)
		for i, old := range keys {
			if old == k {
				values[i] = t.Value
				return
			}
		}
		keys = append(keys, k)
		values = append(values, t.Value)
	}
	var help strings.Builder
	help.WriteString("stat ")
	for _, ns := range path {
		if ns.tags != nil {
			for _, t := range ns.tags {
				addTag(t)
			}
			for i, t := range ns.tags {
				if i > 0 {
					help.WriteByte(',')
				}
				help.WriteString("<" + t.Key + ">")
			}
			help.WriteByte('/')
			continue
		}
		name.WriteString(ns.name)
		name.WriteByte('_')
		help.WriteString(ns.name + "/")
	}
	name.WriteString(m.name)
	help.WriteString(m.name)
	for _, t := range m.tags {
		addTag(t)
	}
	desc := prometheus.NewDesc(promName(name.String()), help.String(), keys, nil)
	return &promSeries{desc: desc, values: values, labels: prometheus.MakeLabelPairs(desc, values)}
}

// promName maps a name onto Prometheus's [a-zA-Z_:][a-zA-Z0-9_:]*.
func promName(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// promBuckets reads h into cumulative Prometheus buckets keyed by upper
// bound.
func promBuckets(h *Histogram) (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = map[float64]uint64{}
	if z := h.zero.Load(); z > 0 {
		count = z
		buckets[0] = z
	}
	for i := range h.bins {
		c := h.bins[i].Load()
		if c == 0 {
			continue
		}
		val, exp := binValue(i)
		scale := math.Pow10(exp)
		count += c
		sum += (float64(val) + 0.5) * scale * float64(c)
		buckets[float64(val+1)*scale] = count
	}
	return count, sum, buckets
}

// promBucketsLLHist does the same for a circonusllhist histogram, from its
// "H[<lower>]=<count>" bins.
func promBucketsLLHist(h *circonusllhist.Histogram) (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = map[float64]uint64{}
	type bin struct {
		upper float64
		n     uint64
	}
	var bins []bin
	for _, s := range h.DecStrings() {
		lowS, nS, ok := strings.Cut(strings.TrimPrefix(s, "H["), "]=")
		if !ok {
			continue
		}
		low, err1 := strconv.ParseFloat(lowS, 64)
		n, err2 := strconv.ParseUint(nS, 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		upper := low
		if low != 0 {
			// Two significant digits: the bin is one unit of the second.
			exp := math.Floor(math.Log10(math.Abs(low))) - 1
			upper = low + math.Pow(10, exp)
		}
		bins = append(bins, bin{upper, n})
	}
	// DecStrings lists bins in circonusllhist's order (by value).
	for _, b := range bins {
		count += b.n
		buckets[b.upper] = count
	}
	return count, h.ApproxSum(), buckets
}

// Handler serves the registry in Prometheus's exposition format, with
// the Go runtime and process collectors and any extra collectors.
// Collection errors (such as two series of one name with different label
// names) drop the series concerned and are served as a comment.
func Handler(r *Registry, extra ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Collector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range extra {
		reg.MustRegister(c)
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
