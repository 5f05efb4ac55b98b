package stats

import (
	"math"
	"sync/atomic"

	"github.com/openhistogram/circonusllhist"
)

// Kind is the type of a metric.
type Kind int

// The kinds of metrics.
const (
	KindCounter   Kind = iota // monotonically increasing uint64
	KindGauge                 // int64 or float64 that goes up and down
	KindHistogram             // circonusllhist distribution
)

func (k Kind) String() string {
	switch k {
	case KindCounter:
		return "counter"
	case KindGauge:
		return "gauge"
	case KindHistogram:
		return "histogram"
	}
	return "unknown"
}

// Counter is a monotonically increasing count, recorded with one atomic add.
// The zero value is ready to use.
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value returns the count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// Gauge is an integer that goes up and down. The zero value is ready to use.
type Gauge struct{ v atomic.Int64 }

// Set sets the value.
func (g *Gauge) Set(v int64) { g.v.Store(v) }

// Add adds d (which may be negative).
func (g *Gauge) Add(d int64) { g.v.Add(d) }

// Value returns the value.
func (g *Gauge) Value() int64 { return g.v.Load() }

// FloatGauge is a float64 that goes up and down. The zero value is ready to
// use.
type FloatGauge struct{ bits atomic.Uint64 }

// Set sets the value.
func (g *FloatGauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Value returns the value.
func (g *FloatGauge) Value() float64 { return math.Float64frombits(g.bits.Load()) }

// metric is one registered series.
type metric struct {
	name string
	kind Kind
	tags []Tag  // the metric's own tags, sorted
	key  string // name, or name|ST[tags] with its own tags

	counter    *Counter
	counterFn  func() uint64
	gauge      *Gauge
	fgauge     *FloatGauge
	gaugeFn    func() float64
	hist       *Histogram
	histFn     func() *circonusllhist.Histogram
	typeCode   string // libmtev's _type
	resettable bool

	prom atomic.Pointer[promSeries] // set at the first scrape
}

// value returns a counter or gauge value as a JSON-friendly number: uint64,
// int64, or float64 (nil for NaN or an infinity, which JSON cannot carry).
func (m *metric) value() any {
	switch {
	case m.counter != nil:
		return m.counter.Value()
	case m.counterFn != nil:
		return m.counterFn()
	case m.gauge != nil:
		return m.gauge.Value()
	case m.fgauge != nil:
		return jsonFloat(m.fgauge.Value())
	case m.gaugeFn != nil:
		return jsonFloat(m.gaugeFn())
	}
	return nil
}

func (m *metric) float() float64 {
	switch {
	case m.counter != nil:
		return float64(m.counter.Value())
	case m.counterFn != nil:
		return float64(m.counterFn())
	case m.gauge != nil:
		return float64(m.gauge.Value())
	case m.fgauge != nil:
		return m.fgauge.Value()
	case m.gaugeFn != nil:
		return m.gaugeFn()
	}
	return 0
}

func jsonFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return f
}

// histogram reads a histogram metric, emptying it when reset is set and the
// metric is recorded here.
func (m *metric) histogram(reset bool) *circonusllhist.Histogram {
	switch {
	case m.hist != nil && reset:
		return m.hist.SnapshotAndReset()
	case m.hist != nil:
		return m.hist.Snapshot()
	case m.histFn != nil:
		if h := m.histFn(); h != nil {
			return h
		}
	}
	return circonusllhist.New()
}
