package rest_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

type stalls struct {
	mu sync.Mutex
	s  []rest.Stall
}

func (s *stalls) add(x rest.Stall) { s.mu.Lock(); s.s = append(s.s, x); s.mu.Unlock() }
func (s *stalls) all() []rest.Stall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rest.Stall(nil), s.s...)
}

// goroutinesLabelled returns the goroutine profile (debug=1 shows labels).
func goroutineProfile() string {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}

func TestHungHandlerIsAStall(t *testing.T) {
	var got stalls
	release := make(chan struct{})
	defer close(release)
	rt := rest.New(rest.Options{OnStall: got.add, MaxHung: 1})
	entered := make(chan struct{}, 4)
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release // ignores its context: a real hang
		fmt.Fprint(w, "too late")
	})
	if err := rt.Route(rest.Route{Method: "GET", Base: "/", Expr: "hang", Handler: hang, Deadline: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Route(rest.Route{Method: "GET", Base: "/", Expr: "fine", Deadline: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "fine") })}); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, rt)
	addr := strings.TrimPrefix(srv.URL, "http://")

	// raw HTTP/1.1 so that the connection close is visible
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !resp.Close {
		t.Errorf("hung: %d %v close=%v %s", resp.StatusCode, resp.Header, resp.Close, body)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection not closed after the 503: %v", err)
	}
	st := got.all()
	if len(st) != 1 {
		t.Fatalf("stalls %+v", st)
	}
	s := st[0]
	if s.Source != "http" || s.Name != "/(hang)" || s.Detail != "GET /hang" || s.Deadline != 50*time.Millisecond || s.Hard || s.Labels["mtev.route"] != "/(hang)" {
		t.Errorf("stall %+v", s)
	}
	// the hung goroutine is findable by its labels
	prof := goroutineProfile()
	if !strings.Contains(prof, `"mtev.route":"/(hang)"`) || !strings.Contains(prof, `"mtev.request":"`+s.Labels["mtev.request"]+`"`) {
		t.Errorf("no goroutine labelled with the route in the profile:\n%s", prof)
	}
	// the process keeps serving
	if resp, body := do(t, srv.Client(), "GET", srv.URL+"/fine", nil); resp.StatusCode != 200 || body != "fine" {
		t.Errorf("after the stall: %d %q", resp.StatusCode, body)
	}
	if h := rt.Hung()["default"]; h != 1 {
		t.Errorf("hung count %d", h)
	}
	// a second hung handler in the pool passes MaxHung: hard
	resp2, _ := do(t, srv.Client(), "GET", srv.URL+"/hang", nil)
	if resp2.StatusCode != 503 {
		t.Errorf("second: %d", resp2.StatusCode)
	}
	st = got.all()
	if len(st) != 2 || !st[1].Hard {
		t.Errorf("second stall not hard: %+v", st)
	}
}

func TestHungAfterHeaderAborts(t *testing.T) {
	var got stalls
	release := make(chan struct{})
	defer close(release)
	rt := rest.New(rest.Options{OnStall: got.add})
	rt.Route(rest.Route{Method: "GET", Base: "/", Expr: "half", Deadline: 50 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			<-release
		})})
	srv := newServer(t, rt)
	resp, err := srv.Client().Get(srv.URL + "/half")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	if err == nil {
		t.Error("a body cut short read as complete")
	}
	if len(got.all()) != 1 {
		t.Errorf("stalls %v", got.all())
	}
}

func TestHandlerWithinDeadline(t *testing.T) {
	var got stalls
	rt := rest.New(rest.Options{OnStall: got.add, Deadline: time.Minute, MinCompress: -1})
	rt.HandleFunc("POST", "/", "echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Len", fmt.Sprint(len(b)))
		w.Write(b)
	})
	srv := newServer(t, rt)
	resp, body := do(t, srv.Client(), "POST", srv.URL+"/echo", strings.NewReader(strings.Repeat("z", 100000)))
	if resp.StatusCode != 200 || len(body) != 100000 || resp.Header.Get("X-Len") != "100000" {
		t.Errorf("%d %d", resp.StatusCode, len(body))
	}
	if len(got.all()) != 0 {
		t.Errorf("stalls %v", got.all())
	}
}

func TestHandlerPanicStillReaches(t *testing.T) {
	rt := rest.New(rest.Options{Deadline: time.Minute})
	rt.HandleFunc("GET", "/", "boom", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) })
	srv := newServer(t, rt)
	srv.Config.ErrorLog = nil
	if _, err := srv.Client().Get(srv.URL + "/boom"); err == nil {
		t.Error("an aborted handler answered")
	}
}
