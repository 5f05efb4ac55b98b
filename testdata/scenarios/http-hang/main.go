// Command http-hang is a net/http server that speaks no supervision
// protocol and hangs on demand, for the probe scenarios.
//
//	http-hang -addr 127.0.0.1:PORT [-mode mutex|close] [-hang-after N]
//	          [-listen-when FILE] [-slow D] [-log FILE]
//
// "/" answers "ok"; a request to "/hang" deadlocks the server as below,
// at once. With -mode mutex, the request to "/" that comes after
// N answered ones deadlocks in main.countRequest, which locks the server's
// mutex twice; every later request waits for that mutex in
// main.countRequest too, while the listener keeps accepting. With -mode
// close, the listener is closed after N accepted connections: the process
// lives on, and connections are refused. "/slow" answers after -slow, and
// logs "slow inflight=K" with the number of its requests in flight. With
// -listen-when, the server listens only once FILE exists. -log appends one
// line per event ("start", "listen", "GET /", ...). It prints "ready" once
// it listens.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

type server struct {
	mu        sync.Mutex
	answered  int
	hangAfter int
	forced    bool // a request to /hang came
	mode      string
	slow      time.Duration
	inflight  atomic.Int32
	logMu     sync.Mutex
	log       *os.File
}

func (s *server) logf(format string, args ...any) {
	if s.log == nil {
		return
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.log, format+"\n", args...)
}

// countRequest counts an answered request; past the limit, in mutex
// mode, it takes the lock it already holds.
//
//go:noinline
func (s *server) countRequest() {
	s.mu.Lock()
	if s.forced || s.mode == "mutex" && s.hangAfter > 0 && s.answered >= s.hangAfter {
		s.mu.Lock() // deadlock: this goroutine holds mu
	}
	s.answered++
	s.mu.Unlock()
}

func (s *server) root(w http.ResponseWriter, r *http.Request) {
	s.logf("GET %s", r.URL.Path)
	s.countRequest()
	fmt.Fprintln(w, "ok")
}

// hangHandler deadlocks the server now, in main.countRequest.
func (s *server) hangHandler(w http.ResponseWriter, r *http.Request) {
	s.logf("GET %s", r.URL.Path)
	s.mu.Lock()
	s.forced = true
	s.mu.Unlock()
	s.countRequest()
}

func (s *server) slowHandler(w http.ResponseWriter, r *http.Request) {
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	s.logf("slow inflight=%d", n)
	time.Sleep(s.slow)
	fmt.Fprintln(w, "slow ok")
}

// closingListener closes itself after n accepted connections.
type closingListener struct {
	net.Listener
	n, seen int
}

func (l *closingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.seen++; l.n > 0 && l.seen > l.n {
		c.Close()
		l.Listener.Close()
		return nil, net.ErrClosed
	}
	return c, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	mode := flag.String("mode", "", "mutex or close")
	hangAfter := flag.Int("hang-after", 0, "hang after this many answers (mutex) or connections (close)")
	listenWhen := flag.String("listen-when", "", "listen only once this file exists")
	slow := flag.Duration("slow", 300*time.Millisecond, "how long /slow takes")
	logPath := flag.String("log", "", "event log")
	flag.Parse()

	// A pending timer keeps the runtime's deadlock detector quiet.
	keep := time.AfterFunc(24*time.Hour, func() {})
	defer keep.Stop()

	s := &server{hangAfter: *hangAfter, mode: *mode, slow: *slow}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "http-hang:", err)
			os.Exit(1)
		}
		s.log = f
	}
	s.logf("start")
	for *listenWhen != "" {
		if _, err := os.Stat(*listenWhen); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "http-hang:", err)
		os.Exit(1)
	}
	if *mode == "close" {
		ln = &closingListener{Listener: ln, n: *hangAfter}
	}
	s.logf("listen %s", ln.Addr())
	fmt.Println("ready")
	mux := http.NewServeMux()
	mux.HandleFunc("/", s.root)
	mux.HandleFunc("/slow", s.slowHandler)
	mux.HandleFunc("/hang", s.hangHandler)
	err = http.Serve(ln, mux)
	s.logf("serve ended: %v", err)
	// The listener is gone; the process lives on, hung.
	select {}
}
