package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// TestTelnetTCP drives a line-edited session over TCP the way a telnet
// client does: the server negotiates first, the client answers, and the
// session has an echoing line editor with completion and history.
func TestTelnetTCP(t *testing.T) {
	f := newFixture(t, nil)
	p := dialPeer(t, "tcp", f.tcp)
	p.expect(`app: \(no auth\)`)
	if !poll(func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return bytes.Contains(p.cmds.Bytes(), negotiation)
	}) {
		t.Fatalf("no negotiation; commands received: %v", p.cmds.Bytes())
	}
	p.send(telnetHello)
	p.expect(`app# `)

	// Echo, and \n written as \r\n.
	p.send("show version\r\n")
	p.expect(`show version\r\n`)
	p.expect(`build sysname:\tlinux\r\n`)
	p.expect(`version:\t1\.2\.3\r\n`)
	p.expect(`app# `)

	// Tab completion of a command: one match completes with a space.
	p.send("show eve\t")
	p.expect(`show eventer `)
	// Two matches ("debug", "pools" under eventer: none share a prefix
	// beyond ""), a second tab lists them.
	p.send("\t\t")
	p.expect(`debug  pools`)
	p.send("po\t")
	p.expect(`pools `)
	p.send("\r")
	p.expect(`pool default: 2 loops`)
	p.expect(`app# `)

	// Completion of an argument (a job queue name).
	p.send("mtev jobq wo\t")
	p.expect(`work `)
	p.send("concurrency 3\r")
	p.expect(`work: concurrency 3 \(min 1, max 8, floor 0\)`)

	// History: up arrow recalls the previous line.
	p.send("\x1b[A")
	p.expect(`mtev jobq work concurrency 3`)
	p.send("\x1b[A\r") // one older: show eventer pools
	p.expect(`pool default: 2 loops`)

	// An IAC byte in the input arrives as data (escaped as IAC IAC).
	p.send("show conf x\xff\xff\r")
	p.expect(`show conf x\?\r\n`)
	p.expect(`error: console: .*\r\napp# `)

	p.send("exit\r")
	p.closed()
}

// TestPlainUnix: a client that does not speak telnet (nc, socat) gets plain
// lines and a prompt, without echo.
func TestPlainUnix(t *testing.T) {
	f := newFixture(t, nil)
	p := dialPeer(t, "unix", f.unix)
	p.expect(`app: uid \d+\r\napp# `)
	p.send("sho ver\n")
	out := p.expect(`app# `)
	if !strings.Contains(out, "build sysname:\tlinux\n") || strings.Contains(out, "\r") || strings.Contains(out, "sho ver") {
		t.Errorf("plain output %q: want the output without echo or CR", out)
	}
	p.send("shw version\n")
	p.expect(`error: console: unknown command "shw": did you mean show, shutdown\?`)
	p.send("s version\n")
	p.expect(`ambiguous command "s": show, shutdown`)
	p.send("exit\n")
	p.closed()
}

// TestWebsocket speaks libmtev's websocket console protocol.
func TestWebsocket(t *testing.T) {
	f := newFixture(t, nil)
	mux := &muxMounter{mux: http.NewServeMux()}
	if err := f.srv.Mount(mux); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(mux.mux)
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/mtev/console",
		&websocket.DialOptions{Subprotocols: []string{"mtev_console"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "mtev_console" {
		t.Errorf("subprotocol %q", c.Subprotocol())
	}
	send := func(s string) {
		if err := c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	msgs := make(chan map[string]any, 100)
	go func() {
		defer close(msgs)
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Errorf("%s: %v", b, err)
			}
			msgs <- m
		}
	}()
	recv := func() map[string]any {
		m, ok := <-msgs
		if !ok {
			t.Fatal("websocket closed")
		}
		return m
	}
	send(`{"id":7,"command":["show","version"],"complete":false}`)
	m := recv()
	if m["cmdid"] != "0" || !strings.Contains(m["text"].(string), "build sysname:") {
		t.Errorf("output message %v", m)
	}
	if m = recv(); m["id"] != "7" || m["done"] != true {
		t.Errorf("end message %v", m)
	}
	send(`{"id":8,"command":["show","eve"],"complete":true}`)
	if m = recv(); m["id"] != "8" || len(m["completion"].([]any)) != 1 || m["completion"].([]any)[0] != "eventer" {
		t.Errorf("completion %v", m)
	}
	send(`{"id":9,"command":["frobnicate"]}`)
	if m = recv(); m["id"] != "9" || !strings.Contains(m["error"].(string), "unknown command") {
		t.Errorf("error %v", m)
	}
	send(`not json`)
	if m = recv(); !strings.Contains(m["error"].(string), "bad request") {
		t.Errorf("bad request %v", m)
	}
	// Follow a log: lines arrive as {"id":0,"log":{...}}.
	send(`{"id":10,"command":["log","connect","error"]}`)
	var line map[string]any
	ok := poll(func() bool {
		f.logs.Facility("error").Log().Msg("websocket-follow")
		for {
			select {
			case m := <-msgs:
				if m["log"] != nil {
					line = m
					return true
				}
			default:
				return false
			}
		}
	})
	if !ok {
		t.Fatal("no log line")
	}
	if l, _ := line["log"].(map[string]any); l["message"] != "websocket-follow" || line["id"] != float64(0) {
		t.Errorf("log message %v", line)
	}
	send(`{"id":11,"command":["stop"]}`) // any message ends the follow
	for {
		m := recv()
		if m["id"] == "10" {
			break
		}
	}
}

type muxMounter struct{ mux *http.ServeMux }

func (m *muxMounter) Handle(method, base, expr string, h http.Handler) error {
	m.mux.Handle(method+" "+base+expr, h)
	return nil
}

// TestJSONClient runs every built-in command with output in its text and
// --json forms through the JSON-lines protocol.
func TestBuiltins(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(t)
	f.logs.Facility("recent").Log().Msg("first line")
	f.logs.Facility("recent").Log().Msg("second line")
	cases := []struct{ cmd, want string }{
		{"help", `(?m)^  show +show state`},
		{"help show eventer", `(?m)^  debug +timers\|sockets\|jobq\|memory`},
		{"show ?", `(?m)^  version +build and system`},
		{"show", `(?m)^  eventer`},
		{"show version", `(?m)^run machine:\t`},
		{"show eventer pools", `(?m)^pool default: 2 loops, heart timeout 5s\n  e:default/0 `},
		{"show eventer debug timers", `(?m)^\d+ timers`},
		{"show eventer debug sockets", `(?m)^\d+ descriptors`},
		{"show eventer debug jobq", `(?m)^=== work ===\n concurrency: 2 \(min 1, max 8, floor 0\)`},
		{"show eventer debug jobq work", `=== work ===`},
		{"show eventer debug memory", `(?m)^goroutines: +\d+`},
		{"mtev jobq work max 6", `work: concurrency 2 \(min 1, max 6, floor 0\)`},
		{"mtev jobq work floor 1", `floor 1\)`},
		{"mtev jobq work min 3", `concurrency 3 \(min 3, max 6, floor 1\)`},
		{"show log", `(?m)^recent +memory +enabled`},
		{"show log recent 1", `^\[2\] .*second line\n$`},
		{"log debug recent", `^$`},
		{"show log", `(?m)^recent +memory +enabled,debug`},
		{"no log debug recent", `^$`},
		{"log disable recent", `^$`},
		{"show log", `(?m)^recent +memory +disabled`},
		{"no log disable recent", `^$`},
		{"show conf /app/widgets", `<widget name="sprocket"/>`},
		{"show conf widgets", `<widgets>`},
	}
	for _, tc := range cases {
		out := run(t, c, tc.cmd)
		if !regexp.MustCompile(tc.want).MatchString(out) {
			t.Errorf("%s: output %q does not match %q", tc.cmd, out, tc.want)
		}
	}
	jsonCases := []struct{ cmd, key string }{
		{"show version --json", "bitwidth"},
		{"show eventer pools --json", "loops"},
		{"show eventer debug timers --json", ""},
		{"show eventer debug sockets --json", ""},
		{"show eventer debug jobq --json", "concurrency"},
		{"show eventer debug memory --json", "goroutines"},
		{"show log --json", "Name"},
		{"show log recent 2 --json", "seq"},
		{"show conf /app/widgets --json", "children"},
		{"help --json", ""},
	}
	for _, tc := range jsonCases {
		out := run(t, c, tc.cmd)
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("%s: not JSON: %v\n%s", tc.cmd, err, out)
			continue
		}
		if tc.key != "" && !strings.Contains(out, `"`+tc.key+`"`) {
			t.Errorf("%s: no %q in %s", tc.cmd, tc.key, out)
		}
	}
	errCases := []struct{ cmd, want string }{
		{"show hearts", "not available"},
		{"show incidents", "not available"},
		{"crash", "not available"},
		{"hang 1", "not available"},
		{"restart", "not available"},
		{"shutdown", "not available"},
		{"mtev jobq nosuch concurrency 2", `no job queue "nosuch"`},
		{"mtev jobq work concurrency 99", "outside"},
		{"mtev jobq work speed 2", "unknown setting"},
		{"show log nosuch", "not a memory log"},
		{"log enable nosuch", `no log facility "nosuch"`},
		{"show conf /app/nosuch", "no section /app/nosuch"},
		{"show version extra", "takes no arguments"},
		{"show eventer debug jobq nosuch", `no job queue "nosuch"`},
		{"frob", `unknown command "frob"`},
		{`show conf "unterminated`, "unterminated quote"},
	}
	for _, tc := range errCases {
		var b bytes.Buffer
		err := c.Run(tc.cmd, &b)
		var ce *CommandError
		if !errors.As(err, &ce) || !strings.Contains(ce.Msg, tc.want) {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: error %v, want %q", tc.cmd, err, tc.want)
			}
		}
	}
	if q := f.ev.Queue("work").Snapshot(); q.Min != 3 || q.Max != 6 || q.Floor != 1 || q.Concurrency != 3 {
		t.Errorf("queue after the commands: %+v", q)
	}
	if got, _ := f.logs.Lookup("recent"); !got.Enabled() {
		t.Error("recent is still disabled")
	}
}

// TestConfigureTerminal edits the living configuration and writes it back
// to its file.
func TestConfigureTerminal(t *testing.T) {
	f := newFixture(t, nil)
	p := dialPeer(t, "unix", f.unix)
	p.expect(`app# `)
	steps := []struct{ in, want string }{
		{"configure terminal", `app\(conf:/app\)# `},
		{"ls", `== Section Settings ==\n\n== Subsections ==\neventer\nwidgets\napp\(conf:/app\)# `},
		{"cd widgets", `app\(conf:/app/widgets\)# `},
		{"section gizmos", `app\(conf:/app/widgets/gizmos\)# `},
		{"set color blue", `app\(conf:/app/widgets/gizmos\)# `},
		{"ls", `== Section Settings ==\n@color: blue\n`},
		{"cd ..", `app\(conf:/app/widgets\)# `},
		{"no section widget", `app\(conf:/app/widgets\)# `},
		{"cd /app/eventer/config", `app\(conf:/app/eventer/config\)# `},
		{"ls", `concurrency: 2\n`},
		{"cd /app/nosuch", `error: console: no section /app/nosuch\n`},
		{"write memory", `generation \d+ in memory, 1 files pending write-back`},
		{"write terminal", `<gizmos color="blue"/>`},
		{"write file", `wrote 1 files`},
		{"show version", `unknown command "show"`},
		{"exit", `app# `},
		{"show conf /app/widgets/gizmos", `<gizmos color="blue"/>`},
	}
	for _, s := range steps {
		p.send(s.in + "\n")
		p.expect(s.want)
	}
	b, err := os.ReadFile(f.file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `<gizmos color="blue"/>`) || strings.Contains(string(b), "sprocket") {
		t.Errorf("file after write file:\n%s", b)
	}
	// configure reload: a bad file is refused with file:line and changes
	// nothing; a good one is taken.
	os.WriteFile(f.file, []byte("<app>\n  <widgets>\n</app>\n"), 0o644)
	p.send("configure reload\n")
	p.expect(`error: .*app\.conf:3`)
	os.WriteFile(f.file, []byte("<app>\n  <widgets><widget name=\"cog\"/></widgets>\n</app>\n"), 0o644)
	p.send("configure reload\n")
	p.expect(`reloaded: \d+ changed`)
	p.send("show conf widgets\n")
	p.expect(`<widget name="cog"/>`)
}

// TestCompletion checks completion of commands, arguments and paths, and
// help and exit at every level.
func TestCompletion(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(t)
	cases := []struct {
		line string
		want []string
	}{
		{"", nil}, // checked for content below
		{"sh", []string{"show", "shutdown"}},
		{"show ", []string{"conf", "eventer", "hearts", "incidents", "log", "version"}},
		{"SHOW EV", []string{"eventer"}},
		{"show eventer debug ", []string{"jobq", "memory", "sockets", "timers"}},
		{"show eventer debug jobq ", []string{"default_queue", "work"}},
		{"mtev jobq work ", []string{"concurrency", "floor", "max", "min"}},
		{"log connect rec", []string{"recent"}},
		{"show conf w", []string{"widgets"}},
		{"show conf widgets/", []string{"widgets/widget"}},
		{"hang ", []string{"default"}},
		{"ex", []string{"exit"}},
		{"nosuch ", nil},
	}
	for _, tc := range cases {
		got, err := c.Complete(tc.line)
		if err != nil {
			t.Fatal(err)
		}
		if tc.line == "" {
			if len(got) < 8 {
				t.Errorf("top-level completion: %v", got)
			}
			continue
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("complete %q = %v, want %v", tc.line, got, tc.want)
		}
	}
}

// TestRegister: an application adds a command pair in a few lines; it is
// listed, completed and run like the built-ins, with its own completer.
func TestRegister(t *testing.T) {
	widgets := []string{"sprocket"}
	tree := NewTree()
	tree.Register("show widgets", func(s *Session, args []string) error {
		return s.Output(widgets, func(w io.Writer) {
			for _, x := range widgets {
				fmt.Fprintln(w, x)
			}
		})
	}, nil).Describe("list the widgets")
	tree.Register("widget add", func(s *Session, args []string) error {
		widgets = append(widgets, args...)
		return nil
	}, func(s *Session, args []string) []string { return []string{"cog", "gear"} })
	s := newSession(NewServer(Options{}), context.Background(), &bytes.Buffer{})
	s.modes = []*Mode{{Name: "t", Tree: tree, Prompt: func(*Session) string { return "> " }}}
	if err := s.Execute("widget add cog"); err != nil {
		t.Fatal(err)
	}
	if err := s.Execute("sh wid --json"); err != nil {
		t.Fatal(err)
	}
	if got := s.w.(*bytes.Buffer).String(); got != "[\n  \"sprocket\",\n  \"cog\"\n]\n" {
		t.Errorf("output %q", got)
	}
	if got := s.Complete("widget add g"); strings.Join(got, ",") != "gear" {
		t.Errorf("completion %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("a duplicate registration did not panic")
		}
	}()
	tree.Register("show widgets", func(*Session, []string) error { return nil }, nil)
}
