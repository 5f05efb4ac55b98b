package stats

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openhistogram/circonusllhist"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestConcurrentRecording(t *testing.T) {
	r := NewRegistry()
	ns := r.NS("app/work")
	const goroutines, per = 8, 5000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() { // a reader and resetter racing with the writers
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = r.JSON(Tagged, false)
			_ = r.Samples()
		}
	}()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ns.Counter("ops")
			h := ns.Histogram("latency")
			gauge := ns.Gauge("depth")
			for i := range per {
				c.Inc()
				h.RecordDuration(time.Duration(g*per+i) * time.Microsecond)
				gauge.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-readerDone
	if got := ns.Counter("ops").Value(); got != goroutines*per {
		t.Fatalf("counter = %d, want %d", got, goroutines*per)
	}
	if got := ns.Gauge("depth").Value(); got != goroutines*per {
		t.Fatalf("gauge = %d, want %d", got, goroutines*per)
	}
	h := ns.Histogram("latency")
	if got := h.Snapshot().Count(); got != goroutines*per {
		t.Fatalf("histogram count = %d, want %d", got, goroutines*per)
	}
	// A reset racing with writers loses nothing: every sample is in
	// exactly one of the reads.
	var total uint64
	var wg2 sync.WaitGroup
	wg2.Add(1)
	go func() {
		defer wg2.Done()
		for range per {
			h.Record(0.5)
		}
	}()
	for range 20 {
		total += h.SnapshotAndReset().Count()
	}
	wg2.Wait()
	total += h.SnapshotAndReset().Count()
	if total != goroutines*per+per {
		t.Fatalf("samples across resets = %d, want %d", total, goroutines*per+per)
	}
}

// TestHistogramBins checks that a sample lands in the bin circonusllhist
// itself would choose.
func TestHistogramBins(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		v := math.Pow(10, rng.Float64()*18-8) // 1e-8 .. 1e10
		var h Histogram
		h.Record(v)
		want := circonusllhist.New()
		_ = want.RecordValue(v)
		got := h.Snapshot().DecStrings()
		ws := want.DecStrings()
		if len(got) != 1 || got[0] != ws[0] {
			// Float rounding at a bin edge may move a value by one
			// bin; accept only a value within 1e-12 relative of
			// the edge.
			g, _ := circonusllhist.NewFromStrings(got, false)
			if math.Abs(g.Min()-v)/v > 0.011 {
				t.Fatalf("Record(%g) = %v, circonusllhist bins it %v", v, got, ws)
			}
		}
	}
	var h Histogram
	h.RecordDuration(1500 * time.Nanosecond)
	h.RecordDuration(-time.Second)
	h.Record(math.NaN())
	h.Record(1e30)
	h.Record(1e-12)
	got := strings.Join(h.Snapshot().DecStrings(), " ")
	for _, want := range []string{"H[1.5e-06]=1", "H[0.0e+00]=2", "H[1.0e-09]=1"} {
		if !strings.Contains(got, want) {
			t.Errorf("bins %q lack %q", got, want)
		}
	}
	if h.Count() != 5 {
		t.Errorf("count = %d, want 5", h.Count())
	}
}

func TestTagsAndForms(t *testing.T) {
	r := NewRegistry()
	r.SetApp("demo")
	ev := r.NS("mtev/eventer")
	ev.Counter("events_total").Add(10)
	pool := r.NS("mtev/eventer/pool/default", Tag{"pool", "default"})
	pool.Histogram("cycletime").Record(1.2e-5)
	ev.NS("jobq/q1", Tag{"jobq", "q1"}).Gauge("backlog").Set(3)
	ev.Counter("requests", Tag{"code", "200"}).Inc()
	ev.Counter("requests", Tag{"code", "500"}).Add(2)
	if err := ev.GaugeFunc("load", func() float64 { return math.NaN() }); err != nil {
		t.Fatal(err)
	}

	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	nested := enc(r.JSON(Nested, false))
	for _, want := range []string{
		`"events_total":{"_type":"L","_value":10}`,
		`"cycletime":{"_type":"H","_value":["H[1.2e-05]=1"]}`,
		`"backlog":{"_type":"l","_value":3}`,
		`"requests|ST[code:200]":{"_type":"L","_value":1}`,
		`"load":{"_type":"n","_value":null}`,
	} {
		if !strings.Contains(nested, want) {
			t.Errorf("nested form lacks %s:\n%s", want, nested)
		}
	}
	simple := enc(r.JSON(Simple, false))
	if strings.Contains(simple, "cycletime") || !strings.Contains(simple, `"events_total":10`) {
		t.Errorf("simple form: %s", simple)
	}
	tagged := r.JSON(Tagged, false)
	for _, want := range []string{
		"events_total|ST[app:demo,framework:mtev-supervise,mtev:eventer]",
		"cycletime|ST[app:demo,eventer:pool,framework:mtev-supervise,mtev:eventer,pool:default]",
		"backlog|ST[app:demo,eventer:jobq,framework:mtev-supervise,jobq:q1,mtev:eventer]",
		"requests|ST[app:demo,code:500,framework:mtev-supervise,mtev:eventer]",
	} {
		if _, ok := tagged[want]; !ok {
			t.Errorf("tagged form lacks %s: %v", want, enc(tagged))
		}
	}
	// Reading with reset empties histograms and says so with type h.
	got := enc(r.JSON(Nested, true))
	if !strings.Contains(got, `"cycletime":{"_type":"h","_value":["H[1.2e-05]=1"]}`) {
		t.Errorf("reset read: %s", got)
	}
	if c := pool.Histogram("cycletime").Count(); c != 0 {
		t.Errorf("after reset read, count = %d", c)
	}
	pool.Histogram("cycletime").Record(1)
	if n := r.Reset(KindHistogram); n != 1 {
		t.Errorf("Reset(histogram) = %d, want 1", n)
	}
	if n := r.Reset(KindCounter); n != 3 || ev.Counter("events_total").Value() != 0 {
		t.Errorf("Reset(counter) = %d", n)
	}
}

func TestRegistrationErrors(t *testing.T) {
	r := NewRegistry()
	ns := r.NS("a/b")
	ns.Counter("x")
	if err := ns.CounterFunc("x", func() uint64 { return 1 }); !errors.Is(err, ErrConflict) {
		t.Errorf("func over a counter: %v", err)
	}
	if err := ns.RegisterHistogram("x", new(Histogram)); !errors.Is(err, ErrConflict) {
		t.Errorf("histogram over a counter: %v", err)
	}
	if err := r.NS("a").CounterFunc("b", func() uint64 { return 1 }); !errors.Is(err, ErrConflict) {
		t.Errorf("metric over a namespace: %v", err)
	}
	if _, err := ns.lookup("x", nil); !errors.Is(err, ErrConflict) {
		t.Errorf("namespace over a metric: %v", err)
	}
	if _, err := ns.lookup("c//d", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty element: %v", err)
	}
	if err := ns.CounterFunc("bad|name", func() uint64 { return 1 }); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	if err := ns.CounterFunc("y", func() uint64 { return 1 }, Tag{"k,", "v"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad tag: %v", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Gauge over a Counter did not panic")
			}
		}()
		ns.Gauge("x")
	}()
	if ns.Counter("x") != ns.Counter("x") {
		t.Error("same counter twice gave two counters")
	}
	if !ns.Unregister("x") || ns.Unregister("x") {
		t.Error("Unregister")
	}
	if _, err := ParseFormat("xml"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseFormat(xml): %v", err)
	}
}

func TestOneLine(t *testing.T) {
	c := NewCounter("stats_test/one/line")
	c.Inc()
	if NewCounter("stats_test/one/line").Value() != 1 {
		t.Fatal("NewCounter twice gave two counters")
	}
	NewHistogram("stats_test/lat").RecordDuration(time.Millisecond)
	NewGauge("stats_test/g").Set(-4)
	out := Default.JSON(Simple, false)
	b, _ := json.Marshal(out["stats_test"])
	if string(b) != `{"g":-4,"one":{"line":1}}` {
		t.Fatalf("simple form: %s", b)
	}
}

// scrape serves the registry through Handler and parses the text back.
func scrape(t *testing.T, r *Registry) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(Handler(r))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func TestPrometheus(t *testing.T) {
	r := NewRegistry()
	r.SetApp("demo")
	r.NS("mtev/eventer").Counter("events_total").Add(10)
	h := r.NS("mtev/eventer/pool/default", Tag{"pool", "default"}).Histogram("cycletime")
	h.Record(1.2e-5)
	h.Record(1.25e-5)
	h.Record(3e-3)
	h.Record(0)
	r.NS("mtev/eventer/pool/other", Tag{"pool", "other"}).Histogram("cycletime").Record(1)
	r.NS("mtev/http").Counter("requests", Tag{"code", "200"}).Add(7)
	_ = r.NS("app").GaugeFunc("temp.c", func() float64 { return 21.5 })
	ll := circonusllhist.New()
	_ = ll.RecordValue(2.5)
	_ = ll.RecordValue(2.5)
	_ = r.NS("app").HistogramFunc("ext", func() *circonusllhist.Histogram { return ll })

	fams := scrape(t, r)
	if f := fams["mtev_eventer_events_total"]; f == nil || f.GetType() != dto.MetricType_COUNTER || f.Metric[0].GetCounter().GetValue() != 10 {
		t.Errorf("events_total: %v", f)
	}
	f := fams["mtev_eventer_pool_cycletime"]
	if f == nil || f.GetType() != dto.MetricType_HISTOGRAM || len(f.Metric) != 2 {
		t.Fatalf("cycletime: %v", f)
	}
	var def *dto.Histogram
	for _, m := range f.Metric {
		if m.Label[0].GetName() == "pool" && m.Label[0].GetValue() == "default" {
			def = m.GetHistogram()
		}
	}
	if def == nil || def.GetSampleCount() != 4 {
		t.Fatalf("default pool histogram: %v", def)
	}
	want := map[float64]uint64{0: 1, 1.3e-5: 3, 3.1e-3: 4}
	for _, b := range def.Bucket {
		if w, ok := want[b.GetUpperBound()]; ok {
			if b.GetCumulativeCount() != w {
				t.Errorf("bucket le=%g: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
			}
			delete(want, b.GetUpperBound())
		}
	}
	for le := range want {
		// Float edges: look for a bound within rounding.
		found := false
		for _, b := range def.Bucket {
			if math.Abs(b.GetUpperBound()-le) <= le*1e-9 {
				found = true
			}
		}
		if !found {
			t.Errorf("no bucket le=%g in %v", le, def.Bucket)
		}
	}
	if s := def.GetSampleSum(); math.Abs(s-(1.25e-5+1.25e-5+3.05e-3)) > 1e-9 {
		t.Errorf("sum = %g", s)
	}
	if f := fams["mtev_http_requests"]; f == nil || f.Metric[0].Label[0].GetValue() != "200" {
		t.Errorf("requests: %v", f)
	}
	if f := fams["app_temp_c"]; f == nil || f.Metric[0].GetGauge().GetValue() != 21.5 {
		t.Errorf("app_temp_c: %v", f)
	}
	if f := fams["app_ext"]; f == nil || f.Metric[0].GetHistogram().GetSampleCount() != 2 || f.Metric[0].GetHistogram().Bucket[0].GetUpperBound() != 2.6 {
		t.Errorf("app_ext: %v", f)
	}
	if fams["go_goroutines"] == nil {
		t.Error("no Go runtime collector")
	}
}

// TestPrometheusConflict: two series of one name with different label
// names cannot both be served; the others still are.
func TestPrometheusConflict(t *testing.T) {
	r := NewRegistry()
	r.NS("x").Counter("n", Tag{"a", "1"}).Inc()
	r.NS("x").Counter("n", Tag{"b", "1"}).Inc()
	r.NS("y").Counter("ok").Inc()
	srv := httptest.NewServer(Handler(r))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	if !strings.Contains(buf.String(), "y_ok 1") {
		t.Fatalf("good series dropped with the bad one:\n%s", buf.String())
	}
}
