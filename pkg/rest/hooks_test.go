package rest_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/internal/syncbuf"
	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

// The hook points are process-wide: each test's functions act only on
// requests carrying its own header.
func TestHooks(t *testing.T) {
	mine := func(x *rest.Exchange, v string) bool { return x.Request.Header.Get("X-Hook-Test") == v }
	rest.PostRequest.Register("test-post", func(x *rest.Exchange) hook.Result {
		switch {
		case mine(x, "abort"):
			return hook.Abort
		case mine(x, "done"):
			x.Writer.WriteHeader(299)
			return hook.Done
		}
		return hook.Continue
	})
	rest.ResponseStarting.Register("test-starting", func(x *rest.Exchange) hook.Result {
		if mine(x, "header") {
			x.Writer.Header().Set("X-Added", "yes")
		}
		return hook.Continue
	})
	rest.AuthDenied.Register("test-denied", func(x *rest.Exchange) hook.Result {
		if mine(x, "denied") {
			rest.Error(x.Writer, 401, "log in first")
			return hook.Done
		}
		return hook.Continue
	})
	var completed atomic.Int32
	rest.RequestComplete.Register("test-complete", func(x *rest.Exchange) hook.Result {
		if x.Request.Header.Get("X-Hook-Test") != "" {
			completed.Add(1)
		}
		return hook.Continue
	})
	rest.RequestLog.Register("test-log", func(x *rest.Exchange) hook.Result {
		if mine(x, "quiet") {
			return hook.Done
		}
		return hook.Continue
	})
	var out syncbuf.Buffer
	g := log.New(log.WithStderr(&out))
	rt := rest.New(rest.Options{Logs: g})
	g.Connect("http/access", "stderr")
	rt.HandleFunc("GET", "/", "x.*", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "x") })
	rt.Route(rest.Route{Method: "GET", Base: "/", Expr: "locked", Auth: func(*http.Request) bool { return false },
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	srv := newServer(t, rt)
	send := func(path, v string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("X-Hook-Test", v)
		return srv.Client().Do(req)
	}
	if _, err := send("/x-abort", "abort"); err == nil {
		t.Error("abort: answered")
	}
	if resp, err := send("/x-done", "done"); err != nil || resp.StatusCode != 299 {
		t.Errorf("done: %v %v", resp, err)
	}
	if resp, err := send("/x-header", "header"); err != nil || resp.Header.Get("X-Added") != "yes" {
		t.Errorf("starting: %v", err)
	}
	if resp, err := send("/locked", "denied"); err != nil || resp.StatusCode != 401 {
		t.Errorf("denied: %v %v", resp, err)
	}
	if resp, err := send("/x-quiet", "quiet"); err != nil || resp.StatusCode != 200 {
		t.Errorf("quiet: %v", err)
	}
	if resp, err := send("/x-loud", "loud"); err != nil || resp.StatusCode != 200 {
		t.Errorf("loud: %v", err)
	}
	waitFor(t, "the loud line", func() bool { return strings.Contains(out.String(), "GET /x-loud") })
	if n := completed.Load(); n < 5 {
		t.Errorf("completed %d", n)
	}
	if strings.Contains(out.String(), "x-quiet") {
		t.Errorf("a suppressed line was logged:\n%s", out.String())
	}
	if !strings.Contains(out.String(), `"GET /x-abort HTTP/1.1" 0 `) {
		t.Errorf("the aborted request is not logged with status 0:\n%s", out.String())
	}
}

func TestRouteOnQueue(t *testing.T) {
	ev, err := eventer.New(eventer.Options{Concurrency: 1, Queues: []eventer.QueueOptions{{Name: "one", Concurrency: 1, Backlog: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	defer ev.Stop()
	var got stalls
	rt := rest.New(rest.Options{Eventer: ev, OnStall: got.add})
	release := make(chan struct{})
	entered := make(chan struct{}, 3)
	err = rt.Route(rest.Route{Method: "GET", Base: "/", Expr: "q", Queue: "one", Deadline: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
			fmt.Fprint(w, "queued")
		})})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, rt)
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free() // before ev.Stop, which waits for the job
	results := make(chan int, 2)
	get := func() {
		resp, err := srv.Client().Get(srv.URL + "/q")
		if err != nil {
			results <- -1
			return
		}
		resp.Body.Close()
		results <- resp.StatusCode
	}
	go get()
	<-entered // one runs
	go get()  // one waits in the backlog
	waitFor(t, "one waiting job", func() bool { return ev.Queue("one").Snapshot().Backlog == 1 })
	resp, _ := do(t, srv.Client(), "GET", srv.URL+"/q", nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("full queue: %d", resp.StatusCode)
	}
	free()
	for range 2 {
		if c := <-results; c != 200 {
			t.Errorf("queued request: %d", c)
		}
	}
}
