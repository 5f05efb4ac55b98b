package listener_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/listener"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

func TestGracefulDrain(t *testing.T) {
	rt := rest.New(rest.Options{})
	entered := make(chan struct{})
	release := make(chan struct{})
	rt.HandleFunc("GET", "/", "slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		fmt.Fprint(w, "finished")
	})
	s := listener.NewSet(listener.Options{Router: rt})
	if err := s.Start(mustParse(t, `<app><listeners><listener type="http_rest_api" address="127.0.0.1" port="0"/></listeners></app>`)); err != nil {
		t.Fatal(err)
	}
	addr := s.Listening()[0].Addr.String()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- s.Shutdown(context.Background()) }()
	// new connections are refused while the request drains
	waitUntil(t, "listener closed", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-stopped:
		t.Fatalf("shutdown returned before the request finished: %v", err)
	default:
	}
	close(release)
	if body := <-got; body != "finished" {
		t.Errorf("in-flight request: %q", body)
	}
	if err := <-stopped; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestDrainDeadline(t *testing.T) {
	rt := rest.New(rest.Options{})
	entered := make(chan struct{})
	rt.HandleFunc("GET", "/", "stuck", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})
	s := listener.NewSet(listener.Options{Router: rt})
	if err := s.Start(mustParse(t, `<app><listeners><listener type="control_dispatch" address="127.0.0.1" port="0"/></listeners></app>`)); err != nil {
		t.Fatal(err)
	}
	addr := s.Listening()[0].Addr.String()
	go http.Get("http://" + addr + "/stuck")
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no time to drain: close at once
	if err := s.Shutdown(ctx); err == nil {
		t.Error("shutdown past its deadline reported no error")
	}
}

func TestAcceptHook(t *testing.T) {
	var refuse atomic.Bool
	listener.Accept.Register("test-refuse", func(c net.Conn) hook.Result {
		if refuse.Load() {
			return hook.Abort
		}
		return hook.Continue
	})
	defer refuse.Store(false)
	s, _ := start(t, mustParse(t, `<app><listeners><listener type="http_rest_api" address="127.0.0.1" port="0"/></listeners></app>`))
	url := "http://" + s.Listening()[0].Addr.String() + "/hello"
	if code, _ := get(t, &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, url); code != 200 {
		t.Fatalf("%d", code)
	}
	refuse.Store(true)
	if _, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(url); err == nil {
		t.Error("aborted connection was served")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSocketActivation runs the test binary as a child that inherits a
// listening socket the way systemd passes one (LISTEN_PID, LISTEN_FDS,
// LISTEN_FDNAMES, fd 3), and serves on it.
func TestSocketActivation(t *testing.T) {
	if os.Getenv("ACTIVATION_CHILD") == "1" {
		activationChild()
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // the child holds the socket now (through f)
	// sh sets LISTEN_PID to the pid exec keeps.
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, os.Args[0], "-test.run=^TestSocketActivation$", "-test.v")
	cmd.Env = append(os.Environ(), "ACTIVATION_CHILD=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=web")
	cmd.ExtraFiles = []*os.File{f}
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer cmd.Process.Kill()
	buf := make([]byte, 4096)
	var out strings.Builder
	for !strings.Contains(out.String(), "SERVING ") {
		n, err := stdout.Read(buf)
		if err != nil {
			t.Fatalf("child: %v: %s", err, out.String())
		}
		out.Write(buf[:n])
	}
	line := out.String()[strings.Index(out.String(), "SERVING ")+8:]
	addr := strings.Fields(line)[0]
	if addr != ln.Addr().String() {
		t.Errorf("child serves %s, not the inherited %s", addr, ln.Addr())
	}
	code, body := get(t, http.DefaultClient, "http://"+addr+"/hello")
	if code != 200 || !strings.HasPrefix(body, "hello") {
		t.Errorf("%d %q", code, body)
	}
	cmd.Process.Signal(os.Interrupt)
}

func activationChild() {
	rt := rest.New(rest.Options{})
	rt.HandleFunc("GET", "/", "hello", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") })
	c := listenerSpecs(`<app><listeners><listener type="http_rest_api" name="web" address="0.0.0.0" port="1"/></listeners></app>`)
	s := listener.NewSet(listener.Options{Router: rt})
	if err := s.Start(c); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Printf("SERVING %s\n", s.Listening()[0].Addr)
	select {}
}
