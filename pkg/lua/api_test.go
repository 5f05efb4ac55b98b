package lua

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/internal/syncbuf"
	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

func TestAPI(t *testing.T) {
	ev := startEventer(t, 2, 0)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "app.xml")
	if err := os.WriteFile(cfgPath, []byte(`<app>
  <lua><name>hello</name><port>8080</port><on>true</on><ratio>0.25</ratio><bad>x1</bad>
    <item>a</item><item>b</item></lua>
</app>`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, config.Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cfg.Close() })
	var beats atomic.Int64
	out := &syncbuf.Buffer{}
	logOut := &syncbuf.Buffer{}
	logs := log.New(log.WithStderr(logOut))
	s := newState(t, ev, 0, Options{Config: cfg, Stdout: out, Logs: logs, Heartbeat: func() { beats.Add(1) }, Shared: NewShared()})

	cases := []struct {
		name string
		src  string
		want []any
		err  string
	}{
		{"log", `return mtev.log("stdout", "%s=%d\n", "x", 7)`, []any{int64(4)}, ""},
		{"log facility", `return mtev.log("notice", "hello %s", "notice")`, []any{int64(12)}, ""},
		{"print", `print("a", 1, true)`, nil, ""},
		{"sleep", `local t = mtev.sleep(0.01); return t:seconds() >= 0.01, tostring(t):match("^%d+%.%d+$") ~= nil`, []any{true, true}, ""},
		{"gettimeofday", `local s, us = mtev.gettimeofday(); return s > 1700000000, us >= 0 and us < 1000000`, []any{true, true}, ""},
		{"spawn waitfor notify", `
			for i = 1, 3 do mtev.coroutine_spawn(function(n) mtev.sleep(0.001*n); mtev.notify("k", n, n*10) end, i) end
			local sum = 0
			for i = 1, 3 do local key, a, b = mtev.waitfor("k"); assert(key == "k"); sum = sum + a + b end
			return sum`, []any{int64(66)}, ""},
		{"notify before waitfor is queued", `mtev.notify("q", "early"); local k, v = mtev.waitfor("q"); return v`, []any{"early"}, ""},
		{"waitfor timeout", `return select('#', mtev.waitfor("never", 0.01))`, []any{int64(0)}, ""},
		{"shared", `mtev.shared_set("t", {a = 1, list = {1, 2, "x"}}); local v = mtev.shared_get("t"); v.a = 2; return mtev.shared_get("t").a, v.list[3], mtev.shared_get("missing")`, []any{int64(1), "x", nil}, ""},
		{"shared rejects functions", `mtev.shared_set("f", print)`, nil, "cannot convert a function"},
		{"tojson", `return mtev.tojson({a = {1, 2}, b = "x", f = print}):tostring()`, []any{`{"a":[1,2],"b":"x"}`}, ""},
		{"parsejson", `local j = mtev.parsejson('{"a":[1,2,{"b":true}]}'); return j:document().a[3].b`, []any{true}, ""},
		{"parsejson error", `local j, err, off = mtev.parsejson('{"a":'); return j, off`, []any{nil, int64(5)}, ""},
		{"json round trip", `return mtev.json_decode(mtev.json_encode({x = 1.5})).x`, []any{1.5}, ""},
		{"conf", `return mtev.conf_get_string("/app/lua/name"), mtev.conf_get_integer("/app/lua/port"),
			mtev.conf_get_boolean("/app/lua/on"), mtev.conf_get_float("/app/lua/ratio"), mtev.conf_get_string("/app/lua/none")`,
			[]any{"hello", int64(8080), true, 0.25, nil}, ""},
		{"conf list", `local l = mtev.conf_get_string_list("/app/lua/item"); return #l, l[2]`, []any{int64(2), "b"}, ""},
		{"conf bad value", `return mtev.conf_get_integer("/app/lua/bad")`, nil, "app.xml:2"},
		{"heartbeat", `return mtev.watchdog_child_heartbeat()`, []any{int64(0)}, ""},
		{"getpid", `return mtev.getpid()`, []any{int64(os.Getpid())}, ""},
		{"thread_self", `local tid, loop = mtev.thread_self(); return tid > 0, loop`, []any{true, int64(0)}, ""},
		{"sh", `return mtev.sh("echo out; echo err >&2; exit 3")`, []any{int64(3), "out\n", "err\n"}, ""},
		{"sh timeout", `local st = mtev.sh("sleep 30", 0.05); return st`, []any{int64(-1)}, ""},
		{"sh timeout kills what the shell started", `local st = mtev.sh("sleep 30; echo late", 0.05); return st`, []any{int64(-1)}, ""},
		{"concurrency", `return mtev.eventer_loop_concurrency()`, []any{int64(2)}, ""},
		{"sleep outside a coroutine", `local co = coroutine.create(function() mtev.sleep(0) end); local ok, err = coroutine.resume(co); error(err)`, nil, "not in an mtev coroutine"},
		{"runtime error has file:line", "local x = nil\nreturn x.y", nil, "test.lua:2:"},
		{"syntax error has file:line", "local x = = 1", nil, "test.lua:1:11: syntax error"},
		{"os.exit", `os.exit(3)`, nil, "os.exit(3)"},
		{"plain yield gives the loop a turn", `local x = coroutine.yield(); return 5`, []any{int64(5)}, ""},
		{"own coroutines still work", `local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1); return b * 2 end); return co(1), co(10)`, []any{int64(2), int64(20)}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runChunk(t, s, c.src)
			if c.err != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", r.err, c.err)
				}
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if len(c.want) == 0 && len(r.vals) == 1 && r.vals[0] == nil {
				r.vals = nil
			}
			if !reflect.DeepEqual(r.vals, c.want) {
				t.Fatalf("got %#v, want %#v", r.vals, c.want)
			}
		})
	}
	if got := out.String(); !strings.Contains(got, "x=7\n") || !strings.Contains(got, "a\t1\ttrue\n") {
		t.Errorf("stdout %q lacks mtev.log and print output", got)
	}
	if got := logOut.String(); !strings.Contains(got, "[notice] hello notice") {
		t.Errorf("log %q lacks the notice line", got)
	}
	if beats.Load() != 1 {
		t.Errorf("heartbeat called %d times, want 1", beats.Load())
	}
	var ee *ExitError
	if r := runChunk(t, s, `os.exit(4)`); !errors.As(r.err, &ee) || ee.Code != 4 {
		t.Errorf("os.exit: %v", r.err)
	}
}

// Values set in one state are read in another, on another loop.
func TestSharedAcrossStates(t *testing.T) {
	ev := startEventer(t, 2, 0)
	sh := NewShared()
	a := newState(t, ev, 0, Options{Shared: sh})
	b := newState(t, ev, 1, Options{Shared: sh})
	if r := runChunk(t, a, `mtev.shared_set("k", {n = 42})`); r.err != nil {
		t.Fatal(r.err)
	}
	r := runChunk(t, b, `return mtev.shared_get("k").n`)
	if r.err != nil || !reflect.DeepEqual(r.vals, []any{int64(42)}) {
		t.Fatalf("got %v %v", r.vals, r.err)
	}
}

func TestSocket(t *testing.T) {
	ev := startEventer(t, 1, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	big := strings.Repeat("x", 40000)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// Echo with a delay between lines, so reads wait on
				// the loop; then hang up.
				// Read the whole write: one Read may return part of it.
				buf := make([]byte, len(big))
				n, _ := io.ReadFull(c, buf)
				time.Sleep(20 * time.Millisecond)
				c.Write([]byte("line one\nline two\n"))
				c.Write(buf[:n])
			}()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	s := newState(t, ev, 0, Options{})
	r := runChunk(t, s, fmt.Sprintf(`
		local s = mtev.socket("127.0.0.1")
		local rv, err = s:connect("127.0.0.1", %d)
		assert(rv == 0, err)
		local n = s:write(%q)
		local l1 = s:read("\n")
		local l2 = s:read("\n")
		local body = s:read(%d)
		local rest = s:read(10)
		s:close()
		return n, l1, l2, #body, rest`, port, big, len(big)))
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := []any{int64(len(big)), "line one\n", "line two\n", int64(len(big)), nil}
	if !reflect.DeepEqual(r.vals, want) {
		t.Fatalf("got %#v, want %#v", r.vals, want)
	}
	// A refused connection is an error value, not a Lua error.
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln2.Addr().(*net.TCPAddr).Port
	ln2.Close()
	r = runChunk(t, s, fmt.Sprintf(`local s = mtev.socket("inet"); return s:connect("127.0.0.1", %d)`, closed))
	if r.err != nil || len(r.vals) != 2 || r.vals[0] != int64(-1) || !strings.Contains(fmt.Sprint(r.vals[1]), "refused") {
		t.Fatalf("got %#v %v", r.vals, r.err)
	}
	// Closed by another coroutine while one waits to read: the reader
	// gets nil and an error.
	r = runChunk(t, s, fmt.Sprintf(`
		local s = mtev.socket("inet")
		assert(s:connect("127.0.0.1", %d) == 0)
		mtev.coroutine_spawn(function() mtev.sleep(0.01); s:close() end)
		return s:read("never\n")`, port))
	if r.err != nil || len(r.vals) != 2 || r.vals[0] != nil || r.vals[1] != "socket closed" {
		t.Fatalf("closed under a read: %#v %v", r.vals, r.err)
	}
	r = runChunk(t, s, `local s = mtev.socket("inet"); return s:connect("localhost", 80)`)
	if r.err != nil || len(r.vals) != 2 || !strings.Contains(fmt.Sprint(r.vals[1]), "IP address is required") {
		t.Fatalf("got %#v %v", r.vals, r.err)
	}
}

func TestHTTPClient(t *testing.T) {
	ev := startEventer(t, 1, 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Header.Get("X-Test"))
		w.WriteHeader(201)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	}))
	defer srv.Close()
	s := newState(t, ev, 0, Options{})
	r := runChunk(t, s, fmt.Sprintf(`
		local code, body, hdr = mtev.http_request("post", %q, {["X-Test"] = "yes"}, "payload")
		return code, body, hdr["x-seen"]`, srv.URL+"/p"))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if want := []any{int64(201), "POST /p payload", "yes"}; !reflect.DeepEqual(r.vals, want) {
		t.Fatalf("got %#v, want %#v", r.vals, want)
	}
	r = runChunk(t, s, `return mtev.http_request("GET", "http://127.0.0.1:1/")`)
	if r.err != nil || r.vals[0] != nil || !strings.Contains(fmt.Sprint(r.vals[1]), "refused") {
		t.Fatalf("got %#v %v", r.vals, r.err)
	}
}

// The loop keeps beating its heart and running other callbacks while
// 1,000 Lua coroutines sleep on it.
func TestSleepersDoNotBlockTheLoop(t *testing.T) {
	ev := startEventer(t, 1, 5*time.Second)
	loop := ev.Default().Loop(0)
	s := newState(t, ev, 0, Options{})
	r := runChunk(t, s, `
		for i = 1, 1000 do mtev.coroutine_spawn(function() mtev.sleep(3600); mtev.shared_set("woke", true) end) end
		for i = 1, 1000 do mtev.coroutine_spawn(function() mtev.sleep(0.05); mtev.notify("short", i) end) end
		return true`)
	if r.err != nil {
		t.Fatal(r.err)
	}
	poll(t, "2,000 coroutines parked", func() bool {
		ch := make(chan int, 1)
		if s.Post(func() { ch <- len(s.tasks) }) != nil {
			return false
		}
		return <-ch == 2000
	})
	before := loop.Beats()
	var ran atomic.Int64
	for i := 0; i < 100; i++ {
		loop.Post(func() { ran.Add(1) })
	}
	poll(t, "the loop to keep beating and running callbacks", func() bool {
		return loop.Beats() > before+20 && ran.Load() == 100
	})
	r = runChunk(t, s, `local n = 0; for i = 1, 1000 do mtev.waitfor("short"); n = n + 1 end; return n`)
	if r.err != nil || r.vals[0] != int64(1000) {
		t.Fatalf("short sleepers: %v %v", r.vals, r.err)
	}
	if _, ok := s.opts.Shared.Get("woke"); ok {
		t.Fatal("a one-hour sleeper woke")
	}
}

// A runaway loop is interrupted with an error naming script, line and
// elapsed time before the loop's heart would time out, and reported; the
// loop then carries on.
func TestRunawayInterrupted(t *testing.T) {
	const timeout = 4 * time.Second
	ev := startEventer(t, 1, timeout)
	stalls := make(chan Stall, 1)
	s := newState(t, ev, 0, Options{Name: "spin", OnStall: func(st Stall) { stalls <- st }})
	if d := s.Deadline(); d != timeout/2 {
		t.Fatalf("deadline %v, want %v (half the timeout: the 2 s margin would leave less)", d, timeout/2)
	}
	// While it spins, the loop's goroutine carries the script's pprof
	// label beside the loop's: a goroutine dump names the culprit.
	labelled := make(chan bool, 1)
	go func() {
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			if strings.Contains(b.String(), `"eventer.loop":"e:default/0"`) && strings.Contains(b.String(), `"mtev.lua":"spin"`) {
				labelled <- true
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		labelled <- false
	}()
	r := runChunk(t, s, "local n = 0\nwhile true do\n  n = n + 1\nend")
	if !<-labelled {
		t.Error("no goroutine labelled mtev.lua=spin while the script ran")
	}
	var ie *InterruptError
	if !errors.As(r.err, &ie) || !errors.Is(r.err, ErrInterrupted) {
		t.Fatalf("error %v, want an interruption", r.err)
	}
	if !strings.Contains(ie.Where, "test.lua:") || ie.Script != "spin" {
		t.Errorf("interruption names %q in %q", ie.Where, ie.Script)
	}
	if ie.Elapsed < ie.Deadline || ie.Elapsed >= timeout {
		t.Errorf("interrupted after %v: want between the deadline %v and the heart timeout %v", ie.Elapsed, ie.Deadline, timeout)
	}
	st := <-stalls
	if st.Source != "lua" || st.Name != "spin" || st.Hard || st.Labels["eventer.loop"] != "e:default/0" || !strings.Contains(st.Detail, "interrupted after") {
		t.Errorf("stall %+v", st)
	}
	// The state is usable again.
	if r := runChunk(t, s, `return 1 + 1`); r.err != nil || r.vals[0] != int64(2) {
		t.Fatalf("after the interruption: %v %v", r.vals, r.err)
	}
}

func TestDeadline(t *testing.T) {
	for _, c := range []struct{ set, timeout, want time.Duration }{
		{0, 5 * time.Second, 3 * time.Second},
		{0, 10 * time.Second, 8 * time.Second},
		{0, time.Second, 500 * time.Millisecond},
		{0, 0, 0},
		{time.Second, 0, time.Second},
		{-1, 5 * time.Second, 0},
	} {
		if got := interruptDeadline(c.set, c.timeout, DefaultMargin); got != c.want {
			t.Errorf("interruptDeadline(%v, %v) = %v, want %v", c.set, c.timeout, got, c.want)
		}
	}
}

// pcall cannot swallow an interruption; a heartbeat from Lua restarts the
// deadline.
func TestInterruptNotCatchable(t *testing.T) {
	ev := startEventer(t, 1, 0)
	var beats atomic.Int64
	s := newState(t, ev, 0, Options{Deadline: 200 * time.Millisecond, Heartbeat: func() { beats.Add(1) }})
	r := runChunk(t, s, "local ok = pcall(function() while true do end end)\nreturn 'escaped'")
	if !errors.Is(r.err, ErrInterrupted) {
		t.Fatalf("got %v %v, want an interruption", r.vals, r.err)
	}
	r = runChunk(t, s, `
		local s0, u0 = mtev.gettimeofday()
		local t0 = s0 + u0 / 1e6
		while true do
			mtev.watchdog_child_heartbeat()
			local s1, u1 = mtev.gettimeofday()
			if s1 + u1 / 1e6 - t0 > 0.6 then return "done" end
		end`)
	if r.err != nil || r.vals[0] != "done" {
		t.Fatalf("with heartbeats: %v %v", r.vals, r.err)
	}
}

// The peer hangs up while no coroutine waits on the socket: what it sent
// stays readable, then end of stream; a flood is read in pieces.
func TestSocketHangupAndFlood(t *testing.T) {
	ev := startEventer(t, 1, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	flood := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if i == 0 {
				io.ReadFull(c, make([]byte, 3)) // "hi\n": connected
				c.Write([]byte("bye\n"))
				c.(*net.TCPConn).SetLinger(0)
				c.Close() // reset: a hang-up the loop is told about
				continue
			}
			go func() {
				defer c.Close()
				c.Write([]byte(flood))
			}()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	s := newState(t, ev, 0, Options{})
	r := runChunk(t, s, fmt.Sprintf(`
		local s = mtev.socket("inet")
		assert(s:connect("127.0.0.1", %d) == 0)
		s:write("hi\n")
		mtev.sleep(0.1)
		local a = s:read("\n")
		local b = s:read(1)
		return a, b`, port))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.vals) != 2 || (r.vals[0] != "bye\n" && r.vals[0] != nil) || r.vals[1] != nil {
		t.Fatalf("after a hang-up: %#v", r.vals)
	}
	r = runChunk(t, s, fmt.Sprintf(`
		local s = mtev.socket("inet")
		assert(s:connect("127.0.0.1", %d) == 0)
		local parts, total = 0, 0
		while true do
			local p = s:recv(65536)
			if not p then break end
			parts, total = parts + 1, total + #p
		end
		s:close()
		return total, parts > 1`, port))
	if r.err != nil || r.vals[0] != int64(len(flood)) || r.vals[1] != true {
		t.Fatalf("flood: %#v %v", r.vals, r.err)
	}
}
