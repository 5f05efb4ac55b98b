package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mtev-supervise/mtev-supervise/internal/syncbuf"
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

	// ^C clears the line; ^D on an empty line ends the session.
	p.send("frobnicate\x03show version\r")
	p.expect(`build sysname:`)
	p.send("\x04")
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
	if method == "WS" {
		method = "GET"
	}
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
		{"mtev jobq work min 3 --json", "min"},
		{"configure terminal", ""},
		{"write memory --json", "generation"},
		{"write terminal --json", "children"},
		{"exit", ""},
	}
	for _, tc := range jsonCases {
		out := run(t, c, tc.cmd)
		if tc.cmd == "configure terminal" || tc.cmd == "exit" {
			continue // mode changes print nothing
		}
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
		{"show ", []string{"cluster", "conf", "eventer", "hearts", "hooks", "incidents", "log", "modules", "version"}},
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

// TestAttach runs the interactive client of `mtev-supervise console` (the
// terminal side of telnet) against the unix socket.
func TestAttach(t *testing.T) {
	f := newFixture(t, nil)
	conn, err := net.Dial("unix", f.unix)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	inR, inW := io.Pipe()
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- Attach(conn, inR, &out, func() (int, int, bool) { return 90, 20, true }) }()
	if !poll(func() bool { return strings.Contains(out.String(), "app# ") }) {
		t.Fatalf("no prompt: %q", out.String())
	}
	inW.Write([]byte("show ver\t\r"))
	if !poll(func() bool { return strings.Contains(out.String(), "build sysname:") }) {
		t.Fatalf("no output: %q", out.String())
	}
	if !strings.Contains(out.String(), "show version \r\n") {
		t.Errorf("the completed line was not echoed: %q", out.String())
	}
	inW.Write([]byte("exit\r"))
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("attach: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("attach did not end after exit")
	}
	inW.Close()
}

// TestLabels: while a command runs, its goroutine carries the session and
// the command as pprof labels, so a goroutine dump names a stuck command.
func TestLabels(t *testing.T) {
	tree := NewTree()
	var dump bytes.Buffer
	tree.Register("stuck here", func(s *Session, args []string) error {
		return pprof.Lookup("goroutine").WriteTo(&dump, 1)
	}, nil)
	s := newSession(NewServer(Options{}), context.Background(), io.Discard)
	s.modes = []*Mode{{Name: "t", Tree: tree, Prompt: func(*Session) string { return "> " }}}
	if err := s.Execute("stu he"); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"mtev.console.command":"stuck here"`).MatchString(dump.String()) {
		t.Errorf("no command label in the goroutine dump:\n%.2000s", dump.String())
	}
}

// TestPlainTCP: nc on the TCP console. The telnet offer is followed by an
// erase of the line, and then plain lines without echo.
func TestPlainTCP(t *testing.T) {
	f := newFixture(t, nil)
	p := dialPeer(t, "tcp", f.tcp)
	p.expect(`^\r\x1b\[Kapp: \(no auth\)\r\napp# `)
	p.send("show version\n")
	out := p.expect(`app# `)
	if !strings.HasPrefix(out, "build sysname:\tlinux\n") {
		t.Errorf("plain output over TCP: %q", out)
	}
	p.mu.Lock()
	cmds := p.cmds.String()
	p.mu.Unlock()
	if cmds != string(negotiation) {
		t.Errorf("telnet commands sent to a plain client: %q, want only the offer", cmds)
	}
}

// TestHistoryFile: with a history file, a new session recalls the lines of
// the previous ones; the file is trimmed when it grows past twice the
// history.
func TestHistoryFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "history")
	var lines []string
	for i := 0; i < 30; i++ {
		lines = append(lines, fmt.Sprintf("help %d", i))
	}
	os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	f := newFixture(t, func(o *Options) { o.HistoryFile, o.History = file, 10 })
	p := dialPeer(t, "tcp", f.tcp)
	p.expect(`app# `)
	p.send(telnetHello)
	p.send("show version\r")
	p.expect(`build sysname:`)
	p.send("exit\r")
	p.closed()
	q := dialPeer(t, "tcp", f.tcp)
	q.expect(`app# `)
	q.send(telnetHello)
	q.send("\x1b[A\x1b[A\r") // "exit", then "show version"
	q.expect(`show version\r\nbuild sysname:`)
	// 10 lines kept of the 30 (the file was trimmed), then what the two
	// sessions added: show version, exit, show version.
	b, _ := os.ReadFile(file)
	if got := strings.Split(strings.TrimSpace(string(b)), "\n"); len(got) != 13 || got[0] != "help 20" || got[12] != "show version" {
		t.Errorf("history file:\n%s", b)
	}
}

// TestApply: libmtev's apply runs a command per value of a range.
func TestApply(t *testing.T) {
	tree := NewTree()
	tree.Register("echo", func(s *Session, args []string) error {
		s.Printf("%s\n", strings.Join(args, "|"))
		return nil
	}, nil)
	var out bytes.Buffer
	s := newSession(NewServer(Options{}), context.Background(), &out)
	s.modes = []*Mode{{Name: "t", Tree: tree, Prompt: func(*Session) string { return "> " }}}
	cases := []struct{ line, want string }{
		{"apply i 1..3 echo loop {i}", "loop|1\nloop|2\nloop|3\n"},
		{"apply i 0,5..12 echo {i}", "0\n5\n10\n"},
		{"apply ip 10.0.0.0/30 echo host={ip}", "host=10.0.0.0\nhost=10.0.0.1\nhost=10.0.0.2\nhost=10.0.0.3\n"},
		{"apply w a,b echo {w}{w}", "aa\nbb\n"},
		{`apply w "x y" echo {w}`, "x y\n"},
	}
	for _, tc := range cases {
		out.Reset()
		if err := s.Execute(tc.line); err != nil {
			t.Errorf("%s: %v", tc.line, err)
		}
		if out.String() != tc.want {
			t.Errorf("%s: %q, want %q", tc.line, out.String(), tc.want)
		}
	}
	for _, bad := range []string{"apply i 3..1 echo", "apply i 1..1000 echo {i}", "apply ip 10.0.0.0/16 echo", "apply i 1..2", "apply i 1,1..5 echo"} {
		if err := s.Execute(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
