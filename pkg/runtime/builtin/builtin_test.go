package builtin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	rtrace "runtime/trace"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/journal"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime/builtin"
	"github.com/mtev-supervise/mtev-supervise/pkg/stats"
	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/hearts"
)

var update = flag.Bool("update", false, "rewrite the golden shapes in testdata")

// fixture is a real eventer with hearts in a real table, a log graph with a
// memory outlet, a stats registry, a journal with incidents, served by a
// real HTTP server.
type fixture struct {
	srv      *httptest.Server
	ev       *eventer.System
	logs     *log.Graph
	reg      *stats.Registry
	stateDir string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{reg: stats.NewRegistry(), logs: log.New(log.WithStderr(io.Discard)), stateDir: t.TempDir()}
	t.Cleanup(func() { f.logs.Close() })
	if err := f.logs.Configure(log.Spec{Name: "internal", Type: "memory", Path: "100"}); err != nil {
		t.Fatal(err)
	}
	table, tf, err := hearts.Create(16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { table.Close(); tf.Close() })
	f.reg.SetApp("fixture")
	f.ev, err = eventer.New(eventer.Options{
		Concurrency: 2,
		Queues:      []eventer.QueueOptions{{Name: "work", Concurrency: 2}},
		Stats:       f.reg.NS("mtev/eventer"),
		NewHeart: func(name string, timeout time.Duration) eventer.Heart {
			h, err := table.NewHeart(name, timeout)
			if err != nil {
				t.Errorf("heart %s: %v", name, err)
				return nil
			}
			return h
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.ev.Stop)
	// A timer, a job and a watched socket, so every list has an entry.
	if _, err := f.ev.Default().Loop(0).Every("housekeeping", time.Hour, func() {}); err != nil {
		t.Fatal(err)
	}
	fired := make(chan struct{})
	if _, err := f.ev.Default().Loop(1).AfterFunc("warmup", 0, func() { close(fired) }); err != nil {
		t.Fatal(err)
	}
	<-fired
	done := make(chan error, 1)
	if err := f.ev.Queue("work").Add(context.Background(), eventer.Job{Name: "job", Loop: f.ev.Default().Loop(0),
		Work: func(context.Context) error { return nil }, Done: func(err error) { done <- err }}); err != nil {
		t.Fatal(err)
	}
	<-done
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if _, err := f.ev.Default().Loop(1).WatchConn("acceptor", ln.(*net.TCPListener), eventer.Read, func(*eventer.FD, eventer.Interest) {}); err != nil {
		t.Fatal(err)
	}
	f.logs.Facility("internal").Printf("first line")
	f.logs.Facility("internal").Printf("second line")
	f.logs.Facility("internal").Printf("third line")
	writeIncidents(t, f.stateDir)

	m := &mux{}
	err = builtin.Mount(m, builtin.Options{
		Service: "fixture", Version: "1.2.3", StartCount: 2, Supervised: true,
		Stats: f.reg, Eventer: f.ev, Logs: f.logs,
		Hearts: builtin.TableHearts(table, f.ev),
		Incidents: func(limit int) ([]*trace.Record, error) {
			return builtin.ReadIncidents(f.stateDir, "fixture", limit)
		},
		Routes: func() map[string][]builtin.Route {
			return map[string][]builtin.Route{"/mtev/": {{Method: "GET", Expression: `stats\.json`}}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(builtin.HTTPProbe(m))
	t.Cleanup(f.srv.Close)
	return f
}

// writeIncidents journals three incidents of "fixture" (two sharing a
// fingerprint) and one of another service.
func writeIncidents(t *testing.T, stateDir string) {
	t.Helper()
	w, err := journal.Open(watchdog.JournalDir(stateDir), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, svc := range []string{"fixture", "other", "fixture", "fixture"} {
		code := 2
		rec := &trace.Record{
			Schema: trace.SchemaVersion, ID: fmt.Sprintf("inc-%d", i), Service: svc, Time: base.Add(time.Duration(i) * time.Minute),
			Reason: trace.ReasonStall, Action: trace.ActionKeepRunning, PID: 100 + i, StartCount: 1 + i, UptimeMS: 1000,
			Stall:   &trace.Stall{Source: "heart", Stage: "soft", Heart: "e:default/0", AgeMS: 6000, TimeoutMS: 5000},
			Capture: &trace.Capture{Method: "cooperative", DurationMS: 3},
			Goroutines: []trace.Goroutine{
				{ID: 1, State: "waiting", Frames: []trace.Frame{{Function: "main.main", File: "main.go", Line: 10}}},
				{ID: 7, State: "running", Culprit: true, Labels: map[string]string{"eventer.loop": "e:default/0"},
					Frames: []trace.Frame{{Function: fmt.Sprintf("main.hang%d", i%2), File: "hang.go", Line: 42}}},
			},
			LogTail: []string{},
		}
		if i == 3 {
			rec.Reason, rec.Stall, rec.Exit = trace.ReasonCrash, nil, &trace.Exit{Code: &code}
		}
		rec.Fingerprint = trace.Fingerprint(rec)
		b, err := trace.Encode(rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Append(b); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	return f.do(t, "GET", path)
}

func (f *fixture) do(t *testing.T, method, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, nil)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// shape replaces every value by its JSON type and every array by the shape
// of its first element; maps listed in dynamic (by path) keep one key "*".
func shape(v any, path string, dynamic map[string]bool) any {
	switch x := v.(type) {
	case map[string]any:
		if dynamic[path] {
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if len(keys) == 0 {
				return map[string]any{}
			}
			return map[string]any{"*": shape(x[keys[0]], path+"/*", dynamic)}
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = shape(e, path+"/"+k, dynamic)
		}
		return out
	case []any:
		if len(x) == 0 {
			return []any{}
		}
		return []any{shape(x[0], path+"/0", dynamic)}
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func checkGolden(t *testing.T, name string, body []byte, dynamic map[string]bool) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", name, err, body)
	}
	got, _ := json.MarshalIndent(shape(v, "", dynamic), "", "  ")
	got = append(got, '\n')
	file := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: shape differs from %s (run with -update if intended):\n%s", name, file, got)
	}
}

func TestEndpointShapes(t *testing.T) {
	f := newFixture(t)
	// Keys that depend on the Go version or the host are collapsed.
	tests := []struct {
		name, path string
		dynamic    map[string]bool
	}{
		{"stats", "/mtev/stats.json", nil},
		{"stats-simple", "/mtev/stats.json?format=simple", nil},
		{"stats-tagged", "/mtev/stats.json?format=tagged", map[string]bool{"": true}},
		{"memory", "/mtev/memory.json", map[string]bool{"/go": true}},
		{"status", "/mtev/status.json", nil},
		{"hearts", "/mtev/hearts.json", nil},
		{"incidents", "/mtev/incidents.json", nil},
		{"incident", "/mtev/incidents.json?id=3", map[string]bool{"/culprit/labels": true, "/record/goroutines/0/labels": true}},
		{"rest", "/mtev/rest.json", nil},
		{"sockets", "/eventer/sockets.json", nil},
		{"timers", "/eventer/timers.json", nil},
		{"jobq", "/eventer/jobq.json", nil},
		{"eventer-memory", "/eventer/memory.json", nil},
		{"pools", "/eventer/pools.json", nil},
		{"logs", "/eventer/logs/internal.json", nil},
		{"log-outlets", "/eventer/logs.json", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.get(t, tt.path)
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", tt.path, code, body)
			}
			checkGolden(t, tt.name, body, tt.dynamic)
		})
	}
}

func TestEndpointContent(t *testing.T) {
	f := newFixture(t)
	decode := func(path string, v any) {
		t.Helper()
		code, body := f.get(t, path)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}

	// Hearts: one per loop, named and looped like it.
	var hs []builtin.Heart
	decode("/mtev/hearts.json", &hs)
	if len(hs) != 2 || hs[0].Name != "e:default/0" || hs[0].Loop != "e:default/0" || hs[0].TimeoutMS != 5000 || hs[0].State != "on" {
		t.Errorf("hearts: %+v", hs)
	}

	// Incidents: this service only, newest first, grouped by fingerprint.
	var inc struct {
		Incidents []builtin.Incident
		Groups    []builtin.Group
	}
	decode("/mtev/incidents.json", &inc)
	// IDs are journal sequence numbers: 1, 3 and 4 are this service's.
	if len(inc.Incidents) != 3 || inc.Incidents[0].ID != "4" || inc.Incidents[2].ID != "1" {
		t.Fatalf("incidents: %+v", inc.Incidents)
	}
	if c := inc.Incidents[1].Culprit; c == nil || c.ID != 7 || c.Top != "main.hang0 hang.go:42" {
		t.Errorf("culprit: %+v", c)
	}
	if len(inc.Groups) != 2 || inc.Groups[0].Count != 2 || inc.Groups[0].LastID != "3" {
		t.Errorf("groups: %+v", inc.Groups)
	}
	decode("/mtev/incidents.json?limit=1", &inc)
	if len(inc.Incidents) != 1 || inc.Incidents[0].ID != "4" {
		t.Errorf("limit=1: %+v", inc.Incidents)
	}
	var one builtin.Incident
	decode("/mtev/incidents.json?id=1", &one)
	if one.Record == nil || !one.Record.Goroutines[0].Culprit {
		t.Errorf("one incident: goroutines not culprit first: %+v", one.Record)
	}
	if code, body := f.get(t, "/mtev/incidents.json?id=nope"); code != 404 || !strings.Contains(string(body), "nope") {
		t.Errorf("unknown incident: %d %s", code, body)
	}

	// Logs: since and last, and a 404 naming an unknown outlet.
	var lines []builtin.LogLine
	decode("/eventer/logs/internal.json?since=1", &lines)
	if len(lines) != 2 || lines[0].Idx != 2 || !strings.Contains(lines[1].Line, "third line") {
		t.Errorf("since=1: %+v", lines)
	}
	decode("/eventer/logs/internal.json?last=1", &lines)
	if len(lines) != 1 || lines[0].Idx != 3 {
		t.Errorf("last=1: %+v", lines)
	}
	if code, body := f.get(t, "/eventer/logs/nope.json"); code != 404 || string(body) != "{\"error\":\"log 'nope' not found\"}\n" {
		t.Errorf("unknown outlet: %d %s", code, body)
	}
	if code, body := f.get(t, "/eventer/logs/stderr.json"); code != 404 {
		t.Errorf("outlet that is not a memory outlet: %d %s", code, body)
	}
	if code, _ := f.get(t, "/eventer/logs/internal.json?since=x"); code != 400 {
		t.Errorf("bad since: %d", code)
	}

	// Sockets, timers, queues.
	var socks []builtin.Socket
	decode("/eventer/sockets.json", &socks)
	if len(socks) != 1 || socks[0].Callback != "acceptor" || socks[0].Local == nil || socks[0].Local.Address != "127.0.0.1" || socks[0].Mask&1 == 0 {
		t.Errorf("sockets: %+v", socks)
	}
	var timers []builtin.TimerEntry
	decode("/eventer/timers.json", &timers)
	if len(timers) != 1 || timers[0].Callback != "housekeeping" || timers[0].Whence < time.Now().Add(59*time.Minute).UnixMilli() {
		t.Errorf("timers: %+v", timers)
	}
	var qs map[string]builtin.JobQ
	decode("/eventer/jobq.json", &qs)
	if q := qs["work"]; q.TotalJobs != 1 || q.Mode != "FIFO" || q.DesiredConcurrency != 2 {
		t.Errorf("jobq: %+v", qs)
	}

	// Stats: the eventer's histograms, then DELETE empties them.
	var st map[string]any
	decode("/mtev/stats.json?format=tagged", &st)
	key := "latency|ST[app:fixture,callback:warmup,eventer:callbacks,framework:mtev-supervise,mtev:eventer,pool:default]"
	if v, ok := st[key].(map[string]any); !ok || len(v["_value"].([]any)) == 0 {
		t.Fatalf("tagged stats lack %s", key)
	}
	code, body := f.do(t, "DELETE", "/mtev/stats.json")
	if code != 200 || !strings.HasPrefix(string(body), `{"stats_cleared":`) {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	decode("/mtev/stats.json?format=tagged", &st)
	if v := st[key].(map[string]any); len(v["_value"].([]any)) != 0 {
		t.Errorf("after DELETE: %v", v)
	}
	if code, _ := f.do(t, "DELETE", "/mtev/stats.json?type=gauge"); code != 400 {
		t.Errorf("DELETE type=gauge: %d", code)
	}
	if code, _ := f.get(t, "/mtev/stats.json?format=xml"); code != 400 {
		t.Errorf("format=xml: %d", code)
	}

	// Prometheus, parsed back.
	_, body = f.get(t, "/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mtev_eventer_jobq_wait", "mtev_eventer_callbacks_latency", "go_goroutines", "mtev_eventer_jobq_added"} {
		if fams[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	// Heap profile, pprof, dashboard.
	if code, body := f.get(t, "/mtev/heap_profile"); code != 200 || !strings.HasPrefix(string(body), "opt.prof: true\nprof.active: ") {
		t.Errorf("heap_profile: %d %s", code, body)
	}
	if code, body := f.get(t, "/mtev/heap_profile?trigger_dump=true"); code != 200 || len(body) == 0 {
		t.Errorf("heap dump: %d", code)
	}
	if code, body := f.get(t, "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("pprof: %d", code)
	}
	for _, p := range []string{"/", "/mtev/", "/mtev/ui/app.js", "/mtev/ui/chart.js", "/mtev/ui/style.css"} {
		if code, _ := f.get(t, p); code != 200 {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	if code, _ := f.get(t, "/mtev/ui/nope.js"); code != 404 {
		t.Errorf("missing asset: %d", code)
	}
}

func TestTraceEndpoints(t *testing.T) {
	f := newFixture(t)
	if code, _ := f.get(t, "/mtev/trace?seconds=-1"); code != 400 {
		t.Errorf("seconds=-1: %d", code)
	}
	if code, _ := f.get(t, "/mtev/trace?seconds=3600"); code != 400 {
		t.Errorf("seconds=3600: %d", code)
	}
	code, body := f.get(t, "/mtev/trace?seconds=0.2")
	if code != 200 || !bytes.HasPrefix(body, []byte("go 1.")) {
		t.Fatalf("trace: %d, %d bytes starting %q", code, len(body), body[:min(len(body), 16)])
	}
	// Without a recorder the flight trace is 404; with one, a trace file.
	if code, _ := f.get(t, "/mtev/flight.trace"); code != 404 {
		t.Errorf("flight.trace without a recorder: %d", code)
	}
	rec, err := dump.StartFlightRecorder(time.Second, 1<<20)
	if err != nil {
		t.Skipf("flight recorder: %v", err)
	}
	defer rec.Stop()
	m := &mux{}
	if err := builtin.Mount(m, builtin.Options{Flight: rec, AppClaimsRoot: true}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/mtev/flight.trace")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.HasPrefix(b, []byte("go 1.")) {
		t.Errorf("flight.trace: %d, %d bytes", resp.StatusCode, len(b))
	}
	// The app claims "/": the dashboard is at /mtev/ only.
	resp, err = srv.Client().Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("/ with AppClaimsRoot: %d", resp.StatusCode)
	}
	// Endpoints without a source say so.
	resp, err = srv.Client().Get(srv.URL + "/eventer/timers.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), "not available") {
		t.Errorf("timers without an eventer: %d %s", resp.StatusCode, b)
	}
}

func TestLogsFollowedOverWebsocket(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/eventer/logs/internal.ws?since=2"
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	var batch []builtin.LogLine
	if err := wsjson.Read(ctx, c, &batch); err != nil {
		t.Fatal(err)
	}
	if len(batch) != 1 || batch[0].Idx != 3 {
		t.Fatalf("first batch: %+v", batch)
	}
	f.logs.Facility("internal").Printf("a new line")
	if err := wsjson.Read(ctx, c, &batch); err != nil {
		t.Fatal(err)
	}
	if len(batch) != 1 || batch[0].Idx != 4 || !strings.Contains(batch[0].Line, "a new line") {
		t.Fatalf("followed line: %+v", batch)
	}
	c.Close(websocket.StatusNormalClosure, "")
	// An unknown outlet is refused before the upgrade.
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(f.srv.URL, "http")+"/eventer/logs/nope.ws", nil)
	if err == nil || resp == nil || resp.StatusCode != 404 {
		t.Errorf("unknown outlet: %v %v", err, resp)
	}
}

// TestHTTPProbe: while a trace is taken, a request through HTTPProbe is a
// task "http-request" logging its path.
func TestHTTPProbe(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	if err := rtrace.Start(&buf); err != nil {
		t.Skipf("a trace is already running: %v", err)
	}
	code, _ := f.get(t, "/mtev/status.json?probe")
	rtrace.Stop()
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{"http-request", "GET /mtev/status.json"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("trace (%d bytes) lacks %q", buf.Len(), want)
		}
	}
}

// TestTraceConflict: while another execution trace runs, /mtev/trace
// answers 409 at once.
func TestTraceConflict(t *testing.T) {
	f := newFixture(t)
	if err := rtrace.Start(io.Discard); err != nil {
		t.Skipf("a trace is already running: %v", err)
	}
	defer rtrace.Stop()
	code, body := f.get(t, "/mtev/trace?seconds=30")
	if code != http.StatusConflict || !strings.Contains(string(body), "trace") {
		t.Fatalf("trace while tracing: %d %s", code, body)
	}
}

// TestLoopHearts: without a heart table, each loop is a heart whose age is
// the time spent in its current callback: a stuck loop ages.
func TestLoopHearts(t *testing.T) {
	ev, err := eventer.New(eventer.Options{Concurrency: 2, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	defer ev.Stop()
	release := make(chan struct{})
	defer close(release)
	if err := ev.Default().Loop(1).Post(func() { <-release }); err != nil {
		t.Fatal(err)
	}
	hearts := builtin.LoopHearts(ev)
	deadline := time.Now().Add(20 * time.Second)
	for {
		hs := hearts()
		if len(hs) != 2 || hs[0].Name != "e:default/0" || hs[1].Loop != "e:default/1" || hs[1].TimeoutMS != 1000 {
			t.Fatalf("hearts: %+v", hs)
		}
		if hs[1].AgeMS > 0 && hs[0].AgeMS == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stuck loop never aged: %+v", hs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
