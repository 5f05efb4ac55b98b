package watchdog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The HTTP child of BenchmarkListenRestarts: this test binary, run with
// benchHTTPEnv set. It serves on the inherited socket (LISTEN_FDS) or, for
// the baseline, on its own socket at benchHTTPAddrEnv; it answers one
// connection at a time and kills itself after benchHTTPEveryEnv answers.
const (
	benchHTTPEnv      = "MTEV_BENCH_HTTP_CHILD"
	benchHTTPAddrEnv  = "MTEV_BENCH_HTTP_ADDR"
	benchHTTPEveryEnv = "MTEV_BENCH_HTTP_EVERY"
)

func init() {
	if os.Getenv(benchHTTPEnv) == "1" {
		os.Exit(benchHTTPChild())
	}
}

func benchHTTPChild() int {
	var ln net.Listener
	var err error
	if os.Getenv("LISTEN_FDS") == "1" && os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		ln, err = net.FileListener(os.NewFile(3, "http"))
	} else {
		ln, err = net.Listen("tcp", os.Getenv(benchHTTPAddrEnv)) // SO_REUSEADDR, as every Go listener
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 1
	}
	every, _ := strconv.Atoi(os.Getenv(benchHTTPEveryEnv))
	for n := 1; ; n++ {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			return 1
		}
		if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			req.Body.Close()
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
		}
		c.Close()
		if n == every {
			syscall.Kill(os.Getpid(), syscall.SIGKILL) // a crash, right after an answer
		}
	}
}

// BenchmarkListenRestarts: clients hammer an HTTP child (a new connection
// per request, keep-alive off) across 100 crash restarts with zero
// backoff. With --listen the supervisor holds the socket: connections
// made while the child is down wait in the backlog. The baseline is the
// same run with the child opening its own socket at each start. Figures:
// refused connections, other failed requests (resets of connections
// queued on a socket that died), and the worst latency of an answered
// request (about one restart with --listen).
func BenchmarkListenRestarts(b *testing.B) {
	const restarts, clients, every = 100, 4, 20
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	measure := func(b *testing.B, listen bool) {
		cfg := Config{
			Name:        "bench-http",
			Command:     []string{exe, "-test.run=^$"},
			StateDir:    b.TempDir(),
			Restart:     RestartAlways,
			ZeroBackoff: true,
			Retries:     10 * restarts,
			Span:        time.Hour,
			Hearts:      HeartsOff,
			Env:         []string{benchHTTPEnv + "=1", benchHTTPEveryEnv + "=" + strconv.Itoa(every)},
		}
		var addr string
		if listen {
			l, err := ParseListen("http=tcp://127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			cfg.Listen = []Listen{l}
		} else {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			addr = ln.Addr().String()
			ln.Close()
			cfg.Env = append(cfg.Env, benchHTTPAddrEnv+"="+addr)
		}
		var starts atomic.Int64
		bound := make(chan string, 1)
		s, err := New(cfg, Options{Events: func(e Event) {
			switch e := e.(type) {
			case Started:
				starts.Add(1)
			case Listening:
				bound <- e.Address
			}
		}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- s.Serve(ctx) }()
		if listen {
			addr = <-bound
		}
		// Wait until the first child answers; not counted.
		for deadline := time.Now().Add(30 * time.Second); ; {
			if _, err := benchGet(addr); err == nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the child never answered")
			}
			time.Sleep(5 * time.Millisecond)
		}
		var (
			mu                  sync.Mutex
			ok, refused, failed int
			worst               time.Duration
			wg                  sync.WaitGroup
		)
		t0 := time.Now()
		b.ResetTimer()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for starts.Load() <= restarts {
					d, err := benchGet(addr)
					mu.Lock()
					switch {
					case err == nil:
						ok++
						worst = max(worst, d)
					case errors.Is(err, syscall.ECONNREFUSED):
						refused++
					default:
						failed++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(t0)
		b.StopTimer()
		cancel()
		if err := <-served; err != nil {
			b.Fatalf("Serve: %v", err)
		}
		b.ReportMetric(float64(refused), "refused")
		b.ReportMetric(float64(failed), "failed")
		b.ReportMetric(float64(ok), "answered")
		b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		b.ReportMetric(float64(starts.Load()-1), "restarts")
		b.ReportMetric(float64(elapsed.Nanoseconds())/float64(max(ok, 1)), "ns/op") // per answered request
	}
	b.Run("listen", func(b *testing.B) { measure(b, true) })
	b.Run("base-own-socket", func(b *testing.B) { measure(b, false) })
}

// benchGet makes one request on a new connection and returns how long the
// answer took.
func benchGet(addr string) (time.Duration, error) {
	t0 := time.Now()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	return time.Since(t0), nil
}
