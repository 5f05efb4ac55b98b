package eventer

import (
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/openhistogram/circonusllhist"
)

// histDecades is the number of powers of ten a latency histogram covers:
// 1 ns up to the largest time.Duration (about 292 years).
const histDecades = 19

// latency is a log-linear histogram of durations with the bins of
// circonusllhist (two significant decimal digits per power of ten), recorded
// with one atomic add and no lock, so that any number of goroutines may
// record into it while another reads it. Read converts it into a
// circonusllhist.Histogram.
type latency struct {
	zero atomic.Uint64
	bins [histDecades * 90]atomic.Uint64
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

// binOf returns the decade k (n has k+1 decimal digits) and the two
// significant digits of n, in [10, 100).
func binOf(n uint64) (k int, val uint64) {
	// Estimate log10 from the bit length (1233/4096 ≈ log10 2) and
	// correct it with one comparison: 10^k <= n < 10^(k+1).
	k = (bits.Len64(n) * 1233) >> 12
	if n < pow10[k] {
		k--
	}
	if k == 0 {
		return 0, n * 10
	}
	return k, n / pow10[k-1]
}

// record adds one sample. Negative durations count as zero.
func (h *latency) record(d time.Duration) {
	if d <= 0 {
		h.zero.Add(1)
		return
	}
	k, val := binOf(uint64(d))
	h.bins[k*90+int(val-10)].Add(1)
}

// histogram returns the samples recorded so far as a circonusllhist
// histogram, values in seconds. It may run concurrently with record.
func (h *latency) histogram() *circonusllhist.Histogram {
	out := circonusllhist.New()
	if z := h.zero.Load(); z > 0 {
		_ = out.RecordIntScales(0, 0, int64(z))
	}
	for i := range h.bins {
		c := h.bins[i].Load()
		if c == 0 {
			continue
		}
		k, val := i/90, int64(i%90+10)
		// val × 10^(k-1) ns = val × 10^(k-10) s.
		_ = out.RecordIntScales(val, k-10, int64(c))
	}
	return out
}

// Histogram is a JSON-friendly summary of a latency histogram. Values are in
// seconds. Bins holds the circonusllhist bins as "H[<value>]=<count>"
// strings, the text form libmtev's stats use; Raw holds the histogram itself
// for merging or serializing in circonusllhist's binary form.
type Histogram struct {
	Count uint64   `json:"count"`
	Mean  float64  `json:"mean"`
	P50   float64  `json:"p50"`
	P99   float64  `json:"p99"`
	Max   float64  `json:"max"`
	Bins  []string `json:"bins,omitempty"`

	Raw *circonusllhist.Histogram `json:"-"`
}

func summarize(h *circonusllhist.Histogram) Histogram {
	s := Histogram{Count: h.Count(), Raw: h}
	if s.Count == 0 {
		return s
	}
	s.Mean = h.ApproxMean()
	if q, err := h.ApproxQuantile([]float64{0.5, 0.99}); err == nil {
		s.P50, s.P99 = q[0], q[1]
	}
	s.Max = h.Max()
	s.Bins = h.DecStrings()
	return s
}

func (h *latency) summary() Histogram { return summarize(h.histogram()) }
