package dump

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pairConns returns both ends of a Pair, closed at the end of the test.
func pairConns(t *testing.T) (parent, child *os.File) {
	t.Helper()
	p, c, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		c.Close()
	})
	return p, c
}

// serveInProcess runs Serve on the child end in a goroutine and returns a
// raw conn on the parent end (its only descriptor) and a function that
// waits for Serve's result.
func serveInProcess(t *testing.T, ctx context.Context, opts Options) (*net.UnixConn, func() error) {
	t.Helper()
	p, c := pairConns(t)
	conn, err := fileConn(p)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	var (
		wg   sync.WaitGroup
		serr error
	)
	t.Cleanup(wg.Wait) // after the conn is closed: cleanups run last first
	t.Cleanup(func() { conn.Close() })
	wg.Go(func() {
		serr = Serve(ctx, c, opts)
		c.Close()
	})
	return conn, func() error {
		wg.Wait()
		return serr
	}
}

func TestServeBadInput(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(dir, "t")
	tests := []struct {
		name  string
		line  string
		id    uint64
		ok    bool
		error string
		files []string // per-file errors, in order
	}{
		{"unknown op", `{"v":1,"id":5,"op":"reboot"}`, 5, false, `unknown op "reboot"`, nil},
		{"not json", `not json`, 0, false, "malformed request", nil},
		{"truncated", `{"v":1,"id":3,"op":"pi`, 0, false, "malformed request", nil},
		{"newer version", `{"v":2,"id":6,"op":"ping"}`, 6, false, "protocol version 2, this child speaks 1", nil},
		{"unknown field", `{"v":1,"id":7,"op":"ping","x":1}`, 7, false, `unknown field "x"`, nil},
		{"trailing data", `{"v":1,"id":8,"op":"ping"} {}`, 8, false, "trailing data", nil},
		{"wrong type", `{"v":1,"id":"nine","op":"ping"}`, 0, false, "malformed request", nil},
		{"too long", `{"v":1,"op":"` + strings.Repeat("x", MaxMessage) + `"}`, 0, false, "longer than 65536 bytes", nil},
		{"bad files", `{"v":1,"id":10,"op":"dump","files":[{"kind":"bogus","path":"` + abs + `"},` +
			`{"kind":"goroutines","path":"rel/x"},{"kind":"trace","path":"` + abs + `"},` +
			`{"kind":"goroutines","path":"` + filepath.Join(dir, "missing", "x") + `"}]}`,
			10, true, "", []string{`unknown kind "bogus"`, "not absolute", "flight recorder not running", "no such file"}},
		{"ping still works", `{"v":1,"id":11,"op":"ping"}`, 11, true, "", nil},
	}
	conn, wait := serveInProcess(t, context.Background(), Options{})
	lr := lineReader{r: conn}
	for _, tt := range tests {
		if _, err := conn.Write([]byte(tt.line + "\n")); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := lr.next()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		rep, err := parseReply(line)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if rep.ID != tt.id || rep.OK != tt.ok || !strings.Contains(rep.Error, tt.error) || (tt.error == "") != (rep.Error == "") {
			t.Fatalf("%s: reply %+v, want id %d ok %v error %q", tt.name, rep, tt.id, tt.ok, tt.error)
		}
		if len(rep.Files) != len(tt.files) {
			t.Fatalf("%s: files %+v", tt.name, rep.Files)
		}
		for i, f := range rep.Files {
			if !strings.Contains(f.Error, tt.files[i]) {
				t.Errorf("%s: file %d error %q, want %q", tt.name, i, f.Error, tt.files[i])
			}
		}
	}
	if _, err := os.Stat(abs); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused file was created: %v", err)
	}
	conn.Close()
	if err := wait(); err != nil {
		t.Fatalf("Serve after the parent closed: %v", err)
	}
}

func TestServeContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	_, wait := serveInProcess(t, ctx, Options{})
	cancel()
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve after cancel: %v", err)
	}
}

func TestServeFromEnvUnset(t *testing.T) {
	t.Setenv(EnvFD, "")
	if err := ServeFromEnv(context.Background(), Options{}); !errors.Is(err, ErrNotSupervised) {
		t.Fatalf("ServeFromEnv: %v, want ErrNotSupervised", err)
	}
	t.Setenv(EnvFD, "x")
	if err := ServeFromEnv(context.Background(), Options{}); err == nil || !strings.Contains(err.Error(), `MTEV_CONTROL_FD="x"`) {
		t.Fatalf("ServeFromEnv: %v", err)
	}
}

func TestDumpBudgetSpent(t *testing.T) {
	// Each reading of the clock is a second later. With a 1.5 s budget the
	// first file is written, the others skipped, and the reply still comes.
	dir := t.TempDir()
	req := request{V: Version, ID: 1, Op: OpDump, BudgetMS: 1500}
	for _, k := range Kinds {
		req.Files = append(req.Files, fileSpec{Kind: k, Path: filepath.Join(dir, k)})
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(0, 0)
	now := func() time.Time {
		clock = clock.Add(time.Second)
		return clock
	}
	rep := handle(b, Options{}, now)
	if !rep.OK || len(rep.Files) != len(Kinds) || rep.Files[0].Error != "" || rep.Files[0].Size == 0 {
		t.Fatalf("reply %+v", rep)
	}
	for _, f := range rep.Files[1:] {
		if f.Error != "skipped: budget spent" {
			t.Errorf("file %s: %q, want it skipped", f.Kind, f.Error)
		}
		if _, err := os.Stat(f.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("skipped file %s exists: %v", f.Kind, err)
		}
	}
	if rep.ElapsedMS != 4000 {
		t.Errorf("elapsed %v ms by the fake clock, want 4000", rep.ElapsedMS)
	}
}

// fakeChild answers each request on conn with the lines script returns.
func fakeChild(t *testing.T, script func(req request) []string) (*Client, func()) {
	t.Helper()
	p, c := pairConns(t)
	client, err := NewClient(p)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := fileConn(c)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		lr := lineReader{r: conn}
		for {
			line, err := lr.next()
			if err != nil {
				return
			}
			var req request
			json.Unmarshal(line, &req)
			for _, l := range script(req) {
				conn.Write([]byte(l + "\n"))
			}
		}
	})
	return client, func() {
		client.Close()
		conn.Close()
		wg.Wait()
	}
}

func TestClientReplies(t *testing.T) {
	tests := []struct {
		name   string
		script func(req request) []string
		want   error
		msg    string
	}{
		{"stale replies and garbage dropped", func(req request) []string {
			return []string{
				`{"v":1,"id":99,"ok":true}`,
				`garbage`,
				`{"v":1,"id":` + itoa(req.ID) + `,"ok":true,"files":[{"kind":"goroutines","path":"/nonexistent/x","size":12}]}`,
			}
		}, nil, ""},
		{"refused", func(req request) []string {
			return []string{`{"v":1,"id":` + itoa(req.ID) + `,"ok":false,"error":"unknown op"}`}
		}, ErrRefused, "unknown op"},
		{"newer version", func(req request) []string {
			return []string{`{"v":2,"id":` + itoa(req.ID) + `,"ok":true}`}
		}, ErrProtocol, "reply in protocol version 2, this parent speaks 1"},
		{"silence", func(request) []string { return nil }, ErrTimeout, "no reply within budget"},
		{"oversized then real", func(req request) []string {
			return []string{strings.Repeat("y", 2*MaxMessage), `{"v":1,"id":` + itoa(req.ID) + `,"ok":true}`}
		}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, stop := fakeChild(t, tt.script)
			defer stop()
			res, err := c.Request(context.Background(), t.TempDir(), 300*time.Millisecond)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range res.Files {
					if f.Size != -1 || !strings.Contains(f.Err, "child reported 12 bytes") {
						t.Fatalf("a file the parent cannot find: %+v", f)
					}
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Request: %v, want %v with %q", err, tt.want, tt.msg)
			}
		})
	}
}

func TestClientBadBudget(t *testing.T) {
	c, stop := fakeChild(t, func(request) []string { return nil })
	defer stop()
	if _, err := c.Request(context.Background(), t.TempDir(), 0); err == nil || !strings.Contains(err.Error(), "budget 0s is not positive") {
		t.Fatalf("zero budget: %v", err)
	}
}

func TestClientPeerGone(t *testing.T) {
	p, c := pairConns(t)
	client, err := NewClient(p)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c.Close()
	if err := client.Ping(context.Background(), time.Minute); !errors.Is(err, ErrClosed) {
		t.Fatalf("ping with the child gone: %v, want ErrClosed", err)
	}
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("z", MaxMessage+10)
	r := strings.NewReader("a\n" + long + "\nb\n\nc")
	lr := lineReader{r: r}
	var got []string
	for {
		l, err := lr.next()
		if errors.Is(err, errTooLong) {
			got = append(got, "<too long>")
			continue
		}
		if err != nil {
			break
		}
		got = append(got, string(l))
	}
	if want := "a,<too long>,b,"; strings.Join(got, ",") != want {
		t.Fatalf("lines %q, want %q", strings.Join(got, ","), want)
	}
}

func itoa(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
