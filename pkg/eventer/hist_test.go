package eventer

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/openhistogram/circonusllhist"
)

func TestLatencyMatchesCirconusllhist(t *testing.T) {
	durations := []time.Duration{
		0, -5, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 1234, 9999, 10000,
		time.Microsecond, 15 * time.Microsecond, time.Millisecond, 123456789,
		time.Second, 59 * time.Minute, 1<<63 - 1,
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		durations = append(durations, time.Duration(r.Int64N(1<<uint(r.IntN(62)+1))))
	}
	var l latency
	want := circonusllhist.New()
	for _, d := range durations {
		l.record(d)
		if d < 0 {
			d = 0
		}
		if err := want.RecordDuration(d); err != nil {
			t.Fatal(err)
		}
	}
	got := l.histogram()
	if !got.Equals(want) {
		t.Fatalf("histograms differ:\n got %v\nwant %v", got.DecStrings(), want.DecStrings())
	}
	if got.Count() != uint64(len(durations)) {
		t.Fatalf("count %d, want %d", got.Count(), len(durations))
	}
}

func TestLatencyConcurrent(t *testing.T) {
	var l latency
	var wg sync.WaitGroup
	const writers, each = 4, 5000
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.record(time.Duration(i*w + 1))
			}
		}()
	}
	// Reading while writing is allowed.
	for range 10 {
		_ = l.summary()
	}
	wg.Wait()
	if got := l.histogram().Count(); got != writers*each {
		t.Fatalf("count %d, want %d", got, writers*each)
	}
}

func TestSummary(t *testing.T) {
	var l latency
	if s := l.summary(); s.Count != 0 || s.Bins != nil {
		t.Fatalf("empty summary = %+v", s)
	}
	for range 99 {
		l.record(time.Millisecond)
	}
	l.record(time.Second)
	s := l.summary()
	if s.Count != 100 {
		t.Fatalf("count %d", s.Count)
	}
	if s.P50 < 0.001 || s.P50 > 0.0011 {
		t.Errorf("p50 %g, want about 1 ms", s.P50)
	}
	if s.Max < 1 || s.Max > 1.1 {
		t.Errorf("max %g, want about 1 s", s.Max)
	}
}
