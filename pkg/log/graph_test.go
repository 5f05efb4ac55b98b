package log

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/internal/syncbuf"
)

// fixedClock is an adjustable clock for tests.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fixedClock {
	return &fixedClock{t: time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC)}
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func newRingGraph(t *testing.T, extra ...Spec) (*Graph, *Ring) {
	t.Helper()
	g := New(WithStderr(&syncbuf.Buffer{}))
	t.Cleanup(func() { g.Close() })
	specs := append([]Spec{{Name: "ring", Type: "memory", Path: "100000", Format: FormatJSON}}, extra...)
	if err := g.Configure(specs...); err != nil {
		t.Fatal(err)
	}
	return g, g.Sink("ring").(*Ring)
}

func ringMessages(r *Ring) []string {
	var out []string
	for _, l := range r.Since(0) {
		var m map[string]any
		if err := json.Unmarshal(l.Data, &m); err != nil {
			out = append(out, "BAD:"+string(l.Data))
			continue
		}
		out = append(out, fmt.Sprint(m["facility"], ":", m["message"]))
	}
	return out
}

func TestBuiltins(t *testing.T) {
	var buf syncbuf.Buffer
	clock := newClock()
	g := New(WithStderr(&buf), WithClock(clock.Now))
	defer g.Close()
	g.Facility("error").Log().Str("k", "two words").Int("n", 3).Msg("boom")
	g.Facility("notice").Log().Msg("note")
	g.Facility("debug").Log().Msg("hidden")
	g.Facility("debug/eventer").Log().Msg("hidden too")
	if err := g.SetEnabled("debug", true); err != nil {
		t.Fatal(err)
	}
	g.Facility("debug/eventer").Log().Msg("shown")
	want := "2026-11-26T10:00:00.123456Z [error] boom k=\"two words\" n=3\n" +
		"2026-11-26T10:00:00.123456Z [notice] note\n" +
		"2026-11-26T10:00:00.123456Z [debug/eventer] shown\n"
	if got := buf.String(); got != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
	}
}

func TestImplicitParent(t *testing.T) {
	g, ring := newRingGraph(t, Spec{Name: "app", Outlets: []string{"ring"}})
	f := g.Facility("app/db/query")
	if p, ok := g.Lookup("app/db"); !ok || p.Name() != "app/db" {
		t.Fatal("implicit parent app/db not created")
	}
	f.Log().Msg("q")
	if err := g.SetEnabled("app/db", false); err != nil {
		t.Fatal(err)
	}
	if f.Enabled() {
		t.Error("facility still live with its only path disabled")
	}
	f.Log().Msg("dropped")
	g.SetEnabled("app/db", true)
	f.Log().Msg("again")
	got := strings.Join(ringMessages(ring), ",")
	if want := "app/db/query:q,app/db/query:again"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for _, s := range g.Stats() {
		if s.Name == "app/db/query" && (len(s.Outlets) != 1 || s.Outlets[0] != "app/db") {
			t.Errorf("outlets of app/db/query = %v", s.Outlets)
		}
	}
}

func TestDiamondDeliversOnce(t *testing.T) {
	g, ring := newRingGraph(t,
		Spec{Name: "a", Outlets: []string{"b", "c"}},
		Spec{Name: "b", Outlets: []string{"ring"}},
		Spec{Name: "c", Outlets: []string{"ring"}},
	)
	g.Facility("a").Log().Msg("x")
	if got := ringMessages(ring); len(got) != 1 {
		t.Errorf("got %v, want one line", got)
	}
	// Disabling one branch keeps the other.
	g.SetEnabled("b", false)
	g.Facility("a").Log().Msg("y")
	g.SetEnabled("ring", false)
	g.Facility("a").Log().Msg("z")
	if got := strings.Join(ringMessages(ring), ","); got != "a:x,a:y" {
		t.Errorf("got %s", got)
	}
}

func TestCycleRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup []Spec
		from  string
		to    string
	}{
		{"self", []Spec{{Name: "a"}}, "a", "a"},
		{"two", []Spec{{Name: "a", Outlets: []string{"b"}}}, "b", "a"},
		{"long", []Spec{{Name: "a", Outlets: []string{"b"}}, {Name: "b", Outlets: []string{"c"}}}, "c", "a"},
		{"implicit", nil, "x", "x/y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New(WithStderr(&syncbuf.Buffer{}))
			defer g.Close()
			if err := g.Configure(tt.setup...); err != nil {
				t.Fatal(err)
			}
			g.Facility(tt.from)
			g.Facility(tt.to)
			err := g.Connect(tt.from, tt.to)
			if !errors.Is(err, ErrCycle) {
				t.Fatalf("Connect(%s, %s) = %v, want ErrCycle", tt.from, tt.to, err)
			}
		})
	}
}

func TestConfigureAllOrNothing(t *testing.T) {
	g := New(WithStderr(&syncbuf.Buffer{}))
	defer g.Close()
	before := len(g.Stats())
	err := g.Configure(
		Spec{Name: "p", Outlets: []string{"q"}},
		Spec{Name: "q", Outlets: []string{"new/child"}},
		Spec{Name: "new/child", Outlets: []string{"p"}},
	)
	if !errors.Is(err, ErrCycle) {
		t.Fatalf("err = %v, want ErrCycle", err)
	}
	if after := len(g.Stats()); after != before {
		t.Errorf("facilities %d -> %d after a refused change", before, after)
	}
	// An implicit parent edge that closes a cycle is refused too.
	err = g.Configure(Spec{Name: "m", Outlets: []string{"m/n"}})
	if !errors.Is(err, ErrCycle) {
		t.Fatalf("err = %v, want ErrCycle", err)
	}
}

func TestConfigureErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "plain")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec Spec
		is   error
		msg  string
	}{
		{"missing dir", Spec{Name: "f", Type: "file", Path: filepath.Join(dir, "nope", "x.log")}, os.ErrNotExist, "no such file or directory"},
		{"parent is a file", Spec{Name: "f", Type: "file", Path: filepath.Join(notDir, "x.log")}, nil, "not a directory"},
		{"path is a dir", Spec{Name: "f", Type: "file", Path: dir}, nil, "is a directory"},
		{"empty path", Spec{Name: "f", Type: "file"}, ErrInvalid, "path is empty"},
		{"unknown type", Spec{Name: "f", Type: "carrier-pigeon"}, ErrUnknownType, "carrier-pigeon"},
		{"bad ring", Spec{Name: "f", Type: "memory", Path: "lots"}, ErrInvalid, "lots"},
		{"empty ring", Spec{Name: "f", Type: "memory"}, ErrInvalid, "limit"},
		{"bad name", Spec{Name: "a//b"}, ErrInvalid, "empty part"},
		{"short period", Spec{Name: "f", Type: "file", Path: filepath.Join(dir, "p.log"), File: FileOptions{RotateEvery: time.Millisecond}}, ErrInvalid, "under one second"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New(WithStderr(&syncbuf.Buffer{}))
			defer g.Close()
			err := g.Configure(tt.spec)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "log: ") {
				t.Errorf("err = %q, want a log: error mentioning %q", err, tt.msg)
			}
			if _, ok := g.Lookup("f"); ok {
				t.Error("facility created despite the error")
			}
		})
	}
}

func TestRetypeRefused(t *testing.T) {
	g := New(WithStderr(&syncbuf.Buffer{}))
	defer g.Close()
	if err := g.Configure(Spec{Name: "r", Type: "memory", Path: "10"}); err != nil {
		t.Fatal(err)
	}
	// Same type again: toggles apply, the output is kept.
	if err := g.Configure(Spec{Name: "r", Type: "memory", Path: "10", Disabled: On}); err != nil {
		t.Fatal(err)
	}
	if f, _ := g.Lookup("r"); f.Enabled() {
		t.Error("r still enabled")
	}
	err := g.Configure(Spec{Name: "r", Type: "stderr"})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v, want ErrInvalid", err)
	}
}

func TestJSONAndDebug(t *testing.T) {
	clock := newClock()
	g := New(WithStderr(&syncbuf.Buffer{}), WithClock(clock.Now))
	defer g.Close()
	if err := g.Configure(
		Spec{Name: "ring", Type: "memory", Path: "10", Format: FormatJSON},
		Spec{Name: "app", Outlets: []string{"ring"}, Debug: On},
	); err != nil {
		t.Fatal(err)
	}
	g.Facility("app").Log().Str("s", "v").Int("n", 7).Bool("b", true).Msg("hi")
	line := g.Sink("ring").(*Ring).Since(0)[0].Data
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("not JSON: %q: %v", line, err)
	}
	if m["time"] != "2026-11-26T10:00:00.123456Z" || m["facility"] != "app" || m["message"] != "hi" ||
		m["s"] != "v" || m["n"] != 7.0 || m["b"] != true {
		t.Errorf("fields: %v", m)
	}
	if c, _ := m["caller"].(string); !strings.HasPrefix(c, "log/graph_test.go:") {
		t.Errorf("caller = %q, want log/graph_test.go:N", c)
	}
	g.SetDebug("app", false)
	g.Facility("app").Log().Msg("plain")
	if bytes.Contains(g.Sink("ring").(*Ring).Since(2)[0].Data, []byte("caller")) {
		t.Error("caller present with debug off")
	}
}

func TestPrintfAndWrite(t *testing.T) {
	g, ring := newRingGraph(t, Spec{Name: "app", Outlets: []string{"ring"}})
	f := g.Facility("app")
	f.Printf("n=%d", 5)
	fmt.Fprintln(f, "via writer")
	if got := strings.Join(ringMessages(ring), ","); got != "app:n=5,app:via writer" {
		t.Errorf("got %s", got)
	}
}

// gateSink blocks in WriteLine until released.
type gateSink struct {
	release chan struct{}
	mu      sync.Mutex
	lines   []string
}

func (s *gateSink) WriteLine(line []byte) error {
	<-s.release
	s.mu.Lock()
	s.lines = append(s.lines, string(line))
	s.mu.Unlock()
	return nil
}

func (s *gateSink) Close() error { return nil }

func (s *gateSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

var gateCounter atomic.Int64

// registerGate registers a new outlet type backed by a gateSink.
func registerGate(t *testing.T) (string, *gateSink) {
	s := &gateSink{release: make(chan struct{})}
	name := fmt.Sprintf("gate%d", gateCounter.Add(1))
	Register(name, Type{Open: func(*Spec, Env) (Sink, error) { return s, nil }, Async: true})
	return name, s
}

func TestOverflow(t *testing.T) {
	const total = 200
	for _, policy := range []Overflow{Drop, Block} {
		t.Run(policy.String(), func(t *testing.T) {
			typ, sink := registerGate(t)
			g := New(WithStderr(&syncbuf.Buffer{}))
			defer g.Close()
			if err := g.Configure(Spec{Name: "out", Type: typ, Format: FormatJSON, Overflow: policy, QueueBytes: 1024},
				Spec{Name: "app", Outlets: []string{"out"}}); err != nil {
				t.Fatal(err)
			}
			f := g.Facility("app")
			var sent atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := range total {
					f.Log().Int("i", i).Msg("line")
					sent.Add(1)
				}
			}()
			stat := func() Stats {
				for _, s := range g.Stats() {
					if s.Name == "out" {
						return s
					}
				}
				t.Fatal("no stats for out")
				return Stats{}
			}
			if policy == Drop {
				<-done // the writer never waits: the sink is stuck, the queue full
				if s := stat(); s.Dropped == 0 || s.Overflow != "drop" {
					t.Fatalf("stats %+v, want drops", s)
				}
			} else {
				waitFor(t, "queue to fill", func() bool { return stat().QueueBytes > 1024-128 }) // no room for one more line
				if n := sent.Load(); n == total {
					t.Fatal("writer finished while the outlet was blocked")
				}
			}
			close(sink.release)
			<-done
			if err := g.Flush(); err != nil {
				t.Fatal(err)
			}
			s := stat()
			if got := s.Lines + s.Dropped; got != total || int(s.Lines) != sink.count() {
				t.Errorf("lines %d + dropped %d != %d (sink saw %d)", s.Lines, s.Dropped, total, sink.count())
			}
			if policy == Block && s.Dropped != 0 {
				t.Errorf("blocking outlet dropped %d", s.Dropped)
			}
		})
	}
}

func TestEnableDisableConcurrent(t *testing.T) {
	g, ring := newRingGraph(t, Spec{Name: "app", Outlets: []string{"ring"}})
	const writers, lines = 4, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := g.Facility(fmt.Sprintf("app/w%d", w))
			for i := range lines {
				f.Log().Int("w", w).Int("i", i).Msg("x")
			}
		}()
	}
	stop := make(chan struct{})
	var toggler sync.WaitGroup
	toggler.Add(1)
	go func() {
		defer toggler.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			g.SetEnabled("app", i%2 == 0)
			g.SetDebug("app/w0", i%3 == 0)
		}
	}()
	wg.Wait()
	close(stop)
	toggler.Wait()
	g.SetEnabled("app", true)
	g.Facility("app/w0").Log().Msg("final")
	// Every delivered line is whole and in order per writer.
	last := map[float64]float64{}
	got := ring.Since(0)
	for _, l := range got[:len(got)-1] {
		var m map[string]any
		if err := json.Unmarshal(l.Data, &m); err != nil {
			t.Fatalf("torn line %q", l.Data)
		}
		w, i := m["w"].(float64), m["i"].(float64)
		if prev, ok := last[w]; ok && i <= prev {
			t.Fatalf("writer %v: line %v after %v", w, i, prev)
		}
		last[w] = i
	}
	if !bytes.Contains(got[len(got)-1].Data, []byte("final")) {
		t.Errorf("last line %q", got[len(got)-1].Data)
	}
}

func TestRegisterType(t *testing.T) {
	var buf syncbuf.Buffer
	Register("test-upper", Type{Open: func(s *Spec, _ Env) (Sink, error) {
		if s.Params["prefix"] == "" {
			return nil, fmt.Errorf("test-upper: prefix missing: %w", ErrInvalid)
		}
		return NewWriterSink(&prefixWriter{prefix: s.Params["prefix"], w: &buf}), nil
	}})
	g := New(WithStderr(&syncbuf.Buffer{}))
	defer g.Close()
	if err := g.Configure(Spec{Name: "u", Type: "test-upper"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	if err := g.Configure(Spec{Name: "u", Type: "test-upper", Params: map[string]string{"prefix": ">> "}}); err != nil {
		t.Fatal(err)
	}
	g.Facility("u").Log().Msg("m")
	if !strings.HasPrefix(buf.String(), ">> ") || !strings.HasSuffix(buf.String(), " [u] m\n") {
		t.Errorf("got %q", buf.String())
	}
	found := false
	for _, n := range Types() {
		found = found || n == "test-upper"
	}
	if !found {
		t.Error("Types() lacks test-upper")
	}
}

type prefixWriter struct {
	prefix string
	w      *syncbuf.Buffer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	return p.w.Write(append([]byte(p.prefix), b...))
}

func TestCloseIdempotent(t *testing.T) {
	dir := t.TempDir()
	g := New(WithStderr(&syncbuf.Buffer{}))
	if err := g.Configure(Spec{Name: "f", Type: "file", Path: filepath.Join(dir, "a.log")}); err != nil {
		t.Fatal(err)
	}
	f := g.Facility("f")
	f.Log().Msg("before")
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	f.Log().Msg("after") // no panic, no output
	if f.Enabled() {
		t.Error("facility live after Close")
	}
	data, _ := os.ReadFile(filepath.Join(dir, "a.log"))
	if !bytes.Contains(data, []byte("before")) || bytes.Contains(data, []byte("after")) {
		t.Errorf("file: %q", data)
	}
	if err := g.Configure(Spec{Name: "x"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Configure after Close: %v", err)
	}
}

func TestConnectDisconnect(t *testing.T) {
	g, ring := newRingGraph(t)
	f := g.Facility("solo")
	if f.Enabled() {
		t.Fatal("top-level facility with no outlets is live")
	}
	f.Log().Msg("nowhere")
	if err := g.Connect("solo", "ring"); err != nil {
		t.Fatal(err)
	}
	if err := g.Connect("solo", "ring"); err != nil { // twice is fine
		t.Fatal(err)
	}
	f.Log().Msg("somewhere")
	if err := g.Disconnect("solo", "ring"); err != nil {
		t.Fatal(err)
	}
	f.Log().Msg("nowhere again")
	if got := strings.Join(ringMessages(ring), ","); got != "solo:somewhere" {
		t.Errorf("got %s", got)
	}
	for _, err := range []error{
		g.Connect("solo", "missing"),
		g.Connect("missing", "solo"),
		g.Disconnect("missing", "solo"),
		g.SetEnabled("missing", true),
		g.SetDebug("missing", true),
	} {
		if !errors.Is(err, ErrUnknownFacility) || !strings.Contains(err.Error(), "missing") {
			t.Errorf("err = %v, want ErrUnknownFacility naming it", err)
		}
	}
}
