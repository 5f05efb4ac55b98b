package lua

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	glua "github.com/yuin/gopher-lua"

	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

const webModule = `
module(..., package.seeall)
function handler(rest, http)
  local req = http:request()
  local caps = req:captures()
  if caps[1] == "boom" then error("boom requested") end
  if caps[1] == "spin" then while true do end end
  if caps[1] == "sleep" then mtev.sleep(0.01) end
  if caps[1] == "slow" then mtev.sleep(0.3) end
  http:status(201)
  http:header("X-Lua", "yes")
  http:json({
    method = req:method(), uri = req:uri(), captures = caps,
    q = req:querystring("q"), agent = req:headers("x-agent"),
    body = req:payload(), rest_caps = rest:captures(),
  })
  http:flush_end()
  http:write("ignored after flush_end")
end
`

func startWeb(t *testing.T, timeout time.Duration, cfg map[string]string) (*Web, *httptest.Server, chan Stall) {
	t.Helper()
	ev := startEventer(t, 2, timeout)
	dir := writeModules(t, map[string]string{"hello.lua": webModule})
	cfg["directory"] = dir
	w := &Web{}
	if err := w.Config(cfg); err != nil {
		t.Fatal(err)
	}
	stalls := make(chan Stall, 4)
	m := rest.New(rest.Options{})
	h := &Host{Name: "lua_web", Eventer: ev, Handle: m.Handle, Report: func(s Stall) { stalls <- s }}
	ctx := context.Background()
	if err := w.Init(ctx, h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	if err := w.PostInit(ctx, h); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return w, srv, stalls
}

func TestWebRoute(t *testing.T) {
	_, srv, _ := startWeb(t, 0, map[string]string{
		"mount_hello": "hello:GET:/hello/:([a-z]+)/(\\d+)$",
		"mount_post":  "hello:POST:/hello/",
	})
	req, _ := http.NewRequest("GET", srv.URL+"/hello/abc/42?q=x%20y", nil)
	req.Header.Set("X-Agent", "test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("X-Lua") != "yes" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d headers %v body %s", resp.StatusCode, resp.Header, body)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	want := map[string]any{"method": "GET", "uri": "/hello/abc/42", "captures": []any{"abc", "42"}, "rest_caps": []any{"abc", "42"}, "q": "x y", "agent": "test", "body": ""}
	for k, v := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	// POST with a body, default expression.
	resp, err = http.Post(srv.URL+"/hello/sleep", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || !strings.Contains(string(body), `"body":"payload"`) || !strings.Contains(string(body), `"captures":["sleep"]`) {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	// A Lua error is a 500 naming it; the next request is served.
	resp, err = http.Post(srv.URL+"/hello/boom", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(body), "hello.lua:6: boom requested") {
		t.Fatalf("error route: %d %s", resp.StatusCode, body)
	}
	// Over 1 MiB is refused before Lua sees it.
	resp, err = http.Post(srv.URL+"/hello/big", "text/plain", strings.NewReader(strings.Repeat("x", MaxBody+1)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("big body: %d", resp.StatusCode)
	}
	// A client that leaves while its handler sleeps: the handler finishes
	// into the void and the route keeps answering.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	req, _ = http.NewRequestWithContext(ctx, "GET", srv.URL+"/hello/slow/1", nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Error("the slow request answered before its client gave up")
	}
	cancel()
	// Many at once, spread over both loops.
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := http.Get(fmt.Sprintf("%s/hello/c/%d", srv.URL, i))
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(b), fmt.Sprintf(`"captures":["c","%d"]`, i)) {
				errs <- fmt.Errorf("request %d: %s", i, b)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A handler that spins is interrupted: 503 with the script and line, a
// stall report, and the route keeps answering.
func TestWebRunaway(t *testing.T) {
	_, srv, stalls := startWeb(t, 0, map[string]string{
		"mount_hello":    "hello:GET:/hello/",
		"interrupt_time": "0.2",
	})
	resp, err := http.Get(srv.URL + "/hello/spin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "hello.lua:7: interrupted after") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if st := <-stalls; st.Source != "lua" || st.Name != "hello" || st.Labels["mtev.lua"] != "hello" || st.Deadline != 200*time.Millisecond {
		t.Errorf("stall %+v", st)
	}
	resp, err = http.Get(srv.URL + "/hello/ok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("after the interruption: %d", resp.StatusCode)
	}
}

func TestWebConfig(t *testing.T) {
	for _, c := range []struct {
		cfg map[string]string
		err string
	}{
		{map[string]string{"mount_a": "mod:GET"}, "want module:METHOD:/base/[:regex]"},
		{map[string]string{"mount_a": "mod:GET:/x/:(["}, "missing closing ]"},
		{map[string]string{"mount_a": "mod:GET:/x/", "loop_assign_b": "p"}, "loop_assign_b: no mount_b"},
		{map[string]string{"bogus": "1"}, "bogus: unknown key"},
		{map[string]string{"interrupt_mode": "preempt"}, "only \"error\""},
		{map[string]string{"interrupt_time": "-1"}, "interrupt_time"},
	} {
		err := (&Web{}).Config(c.cfg)
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%v: error %v, want %q", c.cfg, err, c.err)
		}
	}
	if err := (&Web{}).Config(map[string]string{"mount_a": "m:get:/x/", "dispatch": "m", "cpath": "x", "gc_full": "1000"}); err != nil {
		t.Errorf("libmtev keys: %v", err)
	}
	for _, c := range []struct {
		cfg map[string]string
		err string
	}{
		{map[string]string{"lua_module": "m"}, "lua_module and lua_function are required"},
		{map[string]string{"lua_module": "m", "lua_function": "f", "what": "x"}, "what: unknown key"},
	} {
		if err := (&General{}).Config(c.cfg); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%v: error %v, want %q", c.cfg, err, c.err)
		}
	}
}

// lua_general runs the function on every loop with concurrent, as a Lua
// 5.1 module, with preloads; a syntax error names file and line.
func TestGeneral(t *testing.T) {
	ev := startEventer(t, 3, 0)
	dir := writeModules(t, map[string]string{
		"pre.lua":  `module(..., package.seeall); value = 5`,
		"app.lua":  "module(..., package.seeall)\nlocal pre = require('pre')\nfunction main()\n  mtev.sleep(0.001)\n  local _, loop = mtev.thread_self()\n  return loop, pre.value\nend\n",
		"bad.lua":  "module(..., package.seeall)\nfunction main()\n  local x = = 1\nend\n",
		"boom.lua": "function main()\n  error('tragedy')\nend\n",
	})
	type done struct {
		loop int
		vals []glua.LValue
		err  error
	}
	run := func(cfg map[string]string) []done {
		ch := make(chan done, 8)
		g := &General{Done: func(loop int, v []glua.LValue, err error) { ch <- done{loop, v, err} }, Exit: func(code int) { ch <- done{-code, nil, nil} }}
		cfg["directory"] = dir
		if err := g.Config(cfg); err != nil {
			t.Fatal(err)
		}
		if err := g.Init(context.Background(), &Host{Eventer: ev}); err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		n := 1
		if cfg["concurrent"] == "true" {
			n = 3
		}
		if cfg["tragedy_terminates"] == "true" {
			n++
		}
		var out []done
		for range n {
			select {
			case d := <-ch:
				out = append(out, d)
			case <-time.After(30 * time.Second):
				t.Fatal("lua_general did not finish")
			}
		}
		return out
	}
	seen := map[int]bool{}
	for _, d := range run(map[string]string{"lua_module": "app", "lua_function": "main", "concurrent": "true", "preloads": "pre"}) {
		if d.err != nil || len(d.vals) != 2 || int(d.vals[0].(glua.LNumber)) != d.loop || d.vals[1] != glua.LNumber(5) {
			t.Errorf("loop %d: %v %v", d.loop, d.vals, d.err)
		}
		seen[d.loop] = true
	}
	if len(seen) != 3 {
		t.Errorf("ran on loops %v, want all 3", seen)
	}
	d := run(map[string]string{"lua_module": "bad", "lua_function": "main"})
	if d[0].err == nil || !strings.Contains(d[0].err.Error(), "bad.lua:3:13: syntax error near '='") {
		t.Errorf("syntax error: %v", d[0].err)
	}
	d = run(map[string]string{"lua_module": "app", "lua_function": "nope"})
	if !errors.Is(d[0].err, ErrNoFunction) {
		t.Errorf("missing function: %v", d[0].err)
	}
	d = run(map[string]string{"lua_module": "boom", "lua_function": "main", "tragedy_terminates": "true"})
	if d[0].err == nil || !strings.Contains(d[0].err.Error(), "boom.lua:2: tragedy") || d[1].loop != -255 {
		t.Errorf("tragedy: %+v", d)
	}
}

// dev_mode requires the module again for every request: an edit shows at
// once. Without it the first handler stays.
func TestWebDevMode(t *testing.T) {
	for _, dev := range []bool{true, false} {
		ev := startEventer(t, 1, 0)
		dir := writeModules(t, map[string]string{"v.lua": `module(..., package.seeall); function handler(rest, http) http:write("one") end`})
		w := &Web{}
		if err := w.Config(map[string]string{"directory": dir, "mount_v": "v:GET:/v/", "dev_mode": fmt.Sprint(dev)}); err != nil {
			t.Fatal(err)
		}
		m := rest.New(rest.Options{})
		h := &Host{Eventer: ev, Handle: m.Handle}
		if err := w.Init(context.Background(), h); err != nil {
			t.Fatal(err)
		}
		if err := w.PostInit(context.Background(), h); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(m)
		get := func() string {
			resp, err := http.Get(srv.URL + "/v/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return string(b)
		}
		if got := get(); got != "one" {
			t.Fatalf("dev_mode=%v: first %q", dev, got)
		}
		if err := os.WriteFile(dir+"/v.lua", []byte(`module(..., package.seeall); function handler(rest, http) http:write("two") end`), 0o644); err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{true: "two", false: "one"}[dev]
		if got := get(); got != want {
			t.Errorf("dev_mode=%v: after the edit %q, want %q", dev, got, want)
		}
		srv.Close()
		w.Close()
	}
}
