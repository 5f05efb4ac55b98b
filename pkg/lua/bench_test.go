package lua

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

// BenchmarkWebHello is a lua_web "hello" route answering over real HTTP
// (keep-alive, 8 clients at once), beside the same route written in Go and
// mounted the same way. requests/s is the figure.
func BenchmarkWebHello(b *testing.B) {
	serve := func(b *testing.B, h http.Handler) {
		m := rest.New(rest.Options{})
		if err := m.Handle("GET", "/hello/", "(.*)$", h); err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(m)
		defer srv.Close()
		tr := &http.Transport{MaxIdleConnsPerHost: 8}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		get := func() {
			resp, err := client.Get(srv.URL + "/hello/world")
			if err != nil {
				b.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "hello, world" {
				b.Errorf("%d %q", resp.StatusCode, body)
			}
		}
		get()
		b.ResetTimer()
		b.SetParallelism(4) // 4×GOMAXPROCS clients
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				get()
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
	}
	b.Run("base-go", func(b *testing.B) {
		serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name := r.URL.Path[len("/hello/"):]
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "hello, "+name)
		}))
	})
	b.Run("lua_web", func(b *testing.B) {
		ev := startEventerB(b, 2)
		dir := b.TempDir()
		writeFileB(b, dir+"/hello.lua", `
module(..., package.seeall)
function handler(rest, http)
  local req = http:request()
  http:header("Content-Type", "text/plain")
  http:write("hello, " .. req:captures()[1])
end
`)
		w := &Web{}
		if err := w.Config(map[string]string{"directory": dir, "mount_hello": "hello:GET:/hello/"}); err != nil {
			b.Fatal(err)
		}
		if err := w.Init(context.Background(), &Host{Eventer: ev}); err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		serve(b, w.Handler(w.Mounts()[0]))
	})
}
