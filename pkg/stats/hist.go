package stats

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/openhistogram/circonusllhist"
)

// Histogram range: values are resolved to 1e-9 of their unit (a nanosecond
// for latencies in seconds) and capped below 1e10, in circonusllhist's
// bins of two significant decimal digits.
const (
	histDecades = 19 // powers of ten from 1e-9 up
	histBins    = histDecades * 90
	histMinExp  = -10 // a bin value v (10..99) in decade k means v×10^(k+histMinExp)
)

// Histogram is a log-linear histogram with circonusllhist's bins, recorded
// with one atomic add and no lock or allocation, so any number of goroutines
// may record into it while another reads or resets it. Values are in the
// metric's unit (seconds for latencies); they are resolved to 1e-9 and
// larger values than 1e10 count in the top bin; negative values
// and zero count in the zero bin. The zero value is ready to use; it must
// not be copied after first use.
type Histogram struct {
	zero atomic.Uint64
	bins [histBins]atomic.Uint64
}

// pow10 holds 10^k for k in [0, 20).
var pow10 = func() [histDecades + 1]uint64 {
	var p [histDecades + 1]uint64
	v := uint64(1)
	for i := range p {
		p[i] = v
		v *= 10
	}
	return p
}()

// binIndex returns the bin of n units of 1e-9: the decade k (n has k+1
// decimal digits) and the two significant digits.
func binIndex(n uint64) int {
	// Estimate log10 from the bit length (1233/4096 ≈ log10 2) and
	// correct it with one comparison: 10^k <= n < 10^(k+1).
	k := (bits.Len64(n) * 1233) >> 12
	if n < pow10[k] {
		k--
	}
	if k == 0 {
		return int(n*10) - 10
	}
	return k*90 + int(n/pow10[k-1]) - 10
}

// RecordDuration adds one latency sample, in seconds.
func (h *Histogram) RecordDuration(d time.Duration) {
	switch {
	case d <= 0:
		h.zero.Add(1)
	default:
		h.bins[binIndex(uint64(d))].Add(1)
	}
}

// Record adds one sample.
func (h *Histogram) Record(v float64) { h.RecordN(v, 1) }

// RecordN adds n samples of value v.
func (h *Histogram) RecordN(v float64, n uint64) {
	u := v * 1e9
	switch {
	case !(u >= 1): // zero, negative, below resolution, NaN
		if v > 0 {
			h.bins[0].Add(n)
			return
		}
		h.zero.Add(n)
	case u >= 1e19:
		h.bins[histBins-1].Add(n)
	default:
		h.bins[binIndex(uint64(u))].Add(n)
	}
}

// binValue returns the lower bound of bin i and its circonusllhist form.
func binValue(i int) (val int64, exp int) {
	return int64(i%90 + 10), i/90 + histMinExp
}

// Snapshot returns the samples recorded so far as a circonusllhist
// histogram. It may run concurrently with recording.
func (h *Histogram) Snapshot() *circonusllhist.Histogram {
	return h.read(false)
}

// SnapshotAndReset returns the samples recorded so far and empties the
// histogram; a sample recorded concurrently lands in exactly one of the
// two.
func (h *Histogram) SnapshotAndReset() *circonusllhist.Histogram {
	return h.read(true)
}

// Reset empties the histogram.
func (h *Histogram) Reset() {
	h.zero.Store(0)
	for i := range h.bins {
		h.bins[i].Store(0)
	}
}

func (h *Histogram) load(a *atomic.Uint64, reset bool) uint64 {
	if reset {
		return a.Swap(0)
	}
	return a.Load()
}

func (h *Histogram) read(reset bool) *circonusllhist.Histogram {
	out := circonusllhist.New()
	if z := h.load(&h.zero, reset); z > 0 {
		_ = out.RecordIntScales(0, 0, int64(z))
	}
	for i := range h.bins {
		c := h.load(&h.bins[i], reset)
		if c == 0 {
			continue
		}
		val, exp := binValue(i)
		_ = out.RecordIntScales(val, exp, int64(c))
	}
	return out
}

// Count returns the number of samples recorded.
func (h *Histogram) Count() uint64 {
	n := h.zero.Load()
	for i := range h.bins {
		n += h.bins[i].Load()
	}
	return n
}

// buckets calls fn for the zero bin and every non-empty bin in increasing
// order, with the bin's upper bound and count.
func (h *Histogram) buckets(fn func(upper float64, count uint64)) {
	if z := h.zero.Load(); z > 0 {
		fn(0, z)
	}
	for i := range h.bins {
		c := h.bins[i].Load()
		if c == 0 {
			continue
		}
		val, exp := binValue(i)
		fn(float64(val+1)*math.Pow10(exp), c)
	}
}
