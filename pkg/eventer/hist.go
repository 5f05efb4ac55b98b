package eventer

import (
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/stats"
	"github.com/openhistogram/circonusllhist"
)

// latency is a log-linear histogram of durations with the bins of
// circonusllhist, recorded with one atomic add and no lock
// (stats.Histogram), so that any number of goroutines may record into it
// while another reads it.
type latency struct{ stats.Histogram }

// record adds one sample. Negative durations count as zero.
func (h *latency) record(d time.Duration) { h.RecordDuration(d) }

// histogram returns the samples recorded so far as a circonusllhist
// histogram, values in seconds. It may run concurrently with record.
func (h *latency) histogram() *circonusllhist.Histogram { return h.Snapshot() }

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
