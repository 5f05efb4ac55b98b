package rest_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

func jsonHandler(w http.ResponseWriter, r *http.Request) {
	rest.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "name": "bench", "n": 42})
}

// serve runs h on a loopback listener with the given server.
func serveBench(b *testing.B, serve func(net.Listener) error, stop func()) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go serve(ln)
	b.Cleanup(stop)
	return ln.Addr().String()
}

// load sends b.N GET requests from conc keep-alive clients and reports
// requests/s and the 99th percentile latency.
func load(b *testing.B, url string, conc int) {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	// warm the connections
	for range conc {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	lat := make([]time.Duration, b.N)
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				k := i
				i++
				next.Unlock()
				if k >= b.N {
					return
				}
				t0 := time.Now()
				resp, err := c.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				lat[k] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkJSONRoute: a small JSON route through the full stack (router,
// ACL, access log to a plain log output, handler deadline, listener
// server with limits) beside a bare net/http ServeMux serving the same
// handler, both over loopback TCP with 8 keep-alive clients.
func BenchmarkJSONRoute(b *testing.B) {
	b.Run("mtev", func(b *testing.B) {
		g := log.New(log.WithStderr(io.Discard))
		rt := rest.New(rest.Options{Logs: g, Deadline: 5 * time.Second})
		if err := g.Connect("http/access", "stderr"); err != nil {
			b.Fatal(err)
		}
		c, err := config.Parse("b.conf", []byte(`<app><rest><acl><rule type="allow" url="^/api/"/></acl></rest></app>`), config.Options{NoWriteBack: true})
		if err != nil {
			b.Fatal(err)
		}
		n, _, _ := c.Find("/app/rest")
		acl, err := rest.ParseACL(n)
		if err != nil {
			b.Fatal(err)
		}
		rt.SetACL(acl)
		rt.HandleFunc("GET", "/api/", "status", jsonHandler)
		s := rest.NewServer(rt, rest.ServerOptions{MaxConcurrent: 1000})
		addr := serveBench(b, s.Serve, func() { s.Shutdown(context.Background()) })
		load(b, "http://"+addr+"/api/status", 8)
	})
	b.Run("base-servemux", func(b *testing.B) {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /api/status", jsonHandler)
		s := &http.Server{Handler: mux}
		addr := serveBench(b, s.Serve, func() { s.Shutdown(context.Background()) })
		load(b, "http://"+addr+"/api/status", 8)
	})
}

func echo(ctx context.Context, c *websocket.Conn) {
	for {
		typ, m, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, m); err != nil {
			return
		}
	}
}

func wsLoad(b *testing.B, url string) {
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	msg := []byte(strings.Repeat("m", 64))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkWebSocketEcho: 64-byte echo round trips on one websocket
// registered as a route, beside coder/websocket on a bare http.Server.
func BenchmarkWebSocketEcho(b *testing.B) {
	b.Run("mtev", func(b *testing.B) {
		rt := rest.New(rest.Options{})
		rt.Handle(rest.MethodWebSocket, "/", "echo", rest.WebSocket(nil, func(ctx context.Context, c *websocket.Conn, r *http.Request) { echo(ctx, c) }))
		s := rest.NewServer(rt, rest.ServerOptions{})
		addr := serveBench(b, s.Serve, func() { s.Shutdown(context.Background()) })
		wsLoad(b, "ws://"+addr+"/echo")
	})
	b.Run("base-coder-websocket", func(b *testing.B) {
		s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			echo(r.Context(), c)
		})}
		addr := serveBench(b, s.Serve, func() { s.Shutdown(context.Background()) })
		wsLoad(b, "ws://"+addr+"/echo")
	})
}
