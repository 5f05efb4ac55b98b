package lua

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	glua "github.com/yuin/gopher-lua"

	"github.com/mtev-supervise/mtev-supervise/internal/syncbuf"
	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

// startEventer runs a real eventer with n default loops whose hearts time
// out after timeout.
func startEventer(t *testing.T, n int, timeout time.Duration) *eventer.System {
	t.Helper()
	ev, err := eventer.New(eventer.Options{Concurrency: n, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ev.Stop)
	return ev
}

// startEventerF is startEventer for fuzz targets: one loop.
func startEventerF(f *testing.F) *eventer.System {
	f.Helper()
	ev, err := eventer.New(eventer.Options{Concurrency: 1})
	if err != nil {
		f.Fatal(err)
	}
	if err := ev.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(ev.Stop)
	return ev
}

// startEventerB is startEventer for benchmarks: n loops, no heart timeout.
func startEventerB(b *testing.B, n int) *eventer.System {
	b.Helper()
	ev, err := eventer.New(eventer.Options{Concurrency: n})
	if err != nil {
		b.Fatal(err)
	}
	if err := ev.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ev.Stop)
	return ev
}

func writeFileB(b *testing.B, path, src string) {
	b.Helper()
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
}

// writeModules writes name → source files into a directory and returns it.
func writeModules(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// result of a Lua run, converted to Go on the loop.
type result struct {
	vals []any
	err  error
}

// runChunk runs src in a new coroutine of s and waits for its results.
func runChunk(t *testing.T, s *State, src string) result {
	t.Helper()
	ch := make(chan result, 1)
	if err := s.Post(func() {
		s.Load("test.lua", src, func(v []glua.LValue, err error) {
			var out []any
			for _, x := range v {
				g, cerr := luaToGo(x, 0)
				if cerr != nil {
					g = x.String()
				}
				out = append(out, g)
			}
			ch <- result{out, err}
		})
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("lua chunk did not finish")
		return result{}
	}
}

// newState makes a state on loop i of ev's default pool, closed at cleanup.
func newState(t *testing.T, ev *eventer.System, i int, o Options) *State {
	t.Helper()
	o.Loop = ev.Default().Loop(i)
	if o.Name == "" {
		o.Name = "test"
	}
	if o.Logs == nil {
		o.Logs = log.New(log.WithStderr(&syncbuf.Buffer{}))
	}
	s, err := NewState(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// poll calls cond until it holds or 30 s pass.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for d := time.Millisecond; !cond(); d = min(2*d, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(d)
	}
}
