package eventer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
	"golang.org/x/sys/unix"
)

// variants are the loop designs measured side by side: the default (a
// goroutine parked in Go's netpoller when idle), the libmtev-like locked
// loop blocking its thread in epoll, and the two other combinations.
var variants = []struct {
	name string
	opts PoolOptions
}{
	{"eventer", PoolOptions{}},
	{"eventer-locked", PoolOptions{LockOSThread: true}},
	{"eventer-blocking", PoolOptions{wait: waitBlocking}},
	{"eventer-locked-netpoll", PoolOptions{LockOSThread: true, wait: waitNetpoll}},
}

// BenchmarkTimers: timers scheduled and fired per second, all due 1 ms after
// they are set. One op is one timer set and fired.
func BenchmarkTimers(b *testing.B) {
	const delay = time.Millisecond
	b.Run("base-afterfunc", func(b *testing.B) {
		var left atomic.Int64
		left.Store(int64(b.N))
		done := make(chan struct{})
		fire := func() {
			if left.Add(-1) == 0 {
				close(done)
			}
		}
		b.ResetTimer()
		for range b.N {
			time.AfterFunc(delay, fire)
		}
		<-done
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fires/s")
	})
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			o := v.opts
			o.Name = "bench"
			timerFires(b, startPool(b, o).Loop(0), delay)
		})
	}
}

func timerFires(b *testing.B, l *Loop, delay time.Duration) {
	left := b.N // loop-owned
	done := make(chan struct{})
	fire := func() {
		if left--; left == 0 {
			close(done)
		}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := l.AfterFunc("bench", delay, fire); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fires/s")
}

// BenchmarkPost: one-way latency of a closure posted from one loop to
// another, measured over b.N round trips (A posts to B, B posts back).
// The baseline is the same ping-pong between two goroutines over channels.
func BenchmarkPost(b *testing.B) {
	b.Run("base-chan", func(b *testing.B) {
		lat := make([]int64, b.N)
		ping, pong := make(chan int64), make(chan struct{})
		go func() {
			for i := range lat {
				t0 := <-ping
				lat[i] = mono() - t0
				pong <- struct{}{}
			}
		}()
		b.ResetTimer()
		for range b.N {
			ping <- mono()
			<-pong
		}
		b.StopTimer()
		report(b, lat)
	})
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			o := v.opts
			o.Name, o.Concurrency = "bench", 2
			p := startPool(b, o)
			report(b, postLatency(b, p.Loop(0), p.Loop(1)))
		})
	}
}

func report(b *testing.B, lat []int64) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e3, "median-us")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-us")
}

// postLatency measures b.N one-way posts from a to c, each answered by a
// post back to a.
func postLatency(b *testing.B, a, c *Loop) []int64 {
	lat := make([]int64, b.N)
	done := make(chan struct{})
	i := 0
	var send func()
	send = func() { // on a
		if i == len(lat) {
			close(done)
			return
		}
		t0 := mono()
		_ = c.Post(func() { // on c
			lat[i] = mono() - t0
			i++
			_ = a.Post(send)
		})
	}
	b.ResetTimer()
	_ = a.Post(send)
	<-done
	b.StopTimer()
	return lat
}

// BenchmarkEcho: TCP echo over loopback, 100 connections each sending
// 64-byte messages and waiting for each echo. One op is one message echoed;
// each connection sends b.N/100 of them (run with -benchtime Nx).
func BenchmarkEcho(b *testing.B) {
	const conns, size = 100, 64
	run := func(b *testing.B, addr string) {
		per := max(b.N/conns, 1)
		cs := make([]net.Conn, conns)
		for i := range cs {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			cs[i] = c
		}
		var wg sync.WaitGroup
		b.ResetTimer()
		for _, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg, buf := make([]byte, size), make([]byte, size)
				for range per {
					if _, err := c.Write(msg); err != nil {
						b.Error(err)
						return
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(per*conns)/b.Elapsed().Seconds(), "msgs/s")
	}
	b.Run("base-net", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer serveEach(ln, func(c net.Conn) {
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		})()
		run(b, ln.Addr().String())
	})
	b.Run("base-gnet", func(b *testing.B) {
		h := &gnetEcho{booted: make(chan string, 1)}
		errc := make(chan error, 1)
		go func() {
			errc <- gnet.Run(h, "tcp://127.0.0.1:0",
				gnet.WithMulticore(true),
				gnet.WithNumEventLoop(runtime.NumCPU()),
				gnet.WithLogger(nopLogger{}))
		}()
		var addr string
		select {
		case addr = <-h.booted:
		case err := <-errc:
			b.Fatal(err)
		}
		if addr == "" {
			b.Fatal("gnet: no listener address")
		}
		run(b, addr)
		if err := h.eng.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	})
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			o := v.opts
			o.Name, o.Concurrency = "bench", runtime.NumCPU()
			p := startPool(b, o)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			echoOn(b, p, ln)
			run(b, ln.Addr().String())
		})
	}
	// The mechanism not chosen: readiness from Go's netpoller through
	// syscall.RawConn (one parked goroutine per connection), the I/O done by
	// a callback on the loop, as the eventer's contract requires.
	b.Run("netpoll-handoff", func(b *testing.B) {
		p := startPool(b, PoolOptions{Name: "bench", Concurrency: runtime.NumCPU()})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer serveEach(ln, func(c net.Conn) { netpollServe(p.Next(), c.(*net.TCPConn)) })()
		run(b, ln.Addr().String())
	})
}

// serveEach accepts connections on ln and runs handle for each on its own
// goroutine. The returned stop closes the listener and every connection
// and waits for the goroutines.
func serveEach(ln net.Listener, handle func(net.Conn)) (stop func()) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	return func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// netpollServe waits for readability on Go's netpoller and hands each
// readiness to the loop, which reads and echoes.
func netpollServe(l *Loop, c *net.TCPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	var peek [1]byte
	buf := make([]byte, 4096)
	handled := make(chan bool, 1)
	for {
		err := rc.Read(func(fd uintptr) bool {
			_, _, err := unix.Recvfrom(int(fd), peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			return !errors.Is(err, unix.EAGAIN)
		})
		if err != nil {
			return
		}
		var fd int
		rc.Control(func(u uintptr) { fd = int(u) })
		if l.Post(func() {
			n, err := unix.Read(fd, buf)
			if err != nil || n == 0 {
				handled <- false
				return
			}
			_, err = unix.Write(fd, buf[:n])
			handled <- err == nil
		}) != nil || !<-handled {
			return
		}
	}
}

// nopLogger keeps gnet's start-up lines out of the benchmark output.
type nopLogger struct{}

func (nopLogger) Debugf(string, ...any) {}
func (nopLogger) Infof(string, ...any)  {}
func (nopLogger) Warnf(string, ...any)  {}
func (nopLogger) Errorf(string, ...any) {}
func (nopLogger) Fatalf(string, ...any) {}

var _ logging.Logger = nopLogger{}

type gnetEcho struct {
	gnet.BuiltinEventEngine
	eng    gnet.Engine
	booted chan string
}

func (h *gnetEcho) OnBoot(eng gnet.Engine) gnet.Action {
	h.eng = eng
	addr := ""
	if fd, err := eng.Dup(); err == nil {
		if sa, err := unix.Getsockname(fd); err == nil {
			if in4, ok := sa.(*unix.SockaddrInet4); ok {
				addr = fmt.Sprintf("127.0.0.1:%d", in4.Port)
			}
		}
		unix.Close(fd)
	}
	h.booted <- addr
	return gnet.None
}

func (h *gnetEcho) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Next(-1)
	c.Write(buf)
	return gnet.None
}

// BenchmarkProbeOverhead: timer throughput of the default loop with its
// runtime/trace probes (no trace being taken) beside the same loop with the
// probes compiled out of the path; one op is one timer set and fired. The
// figure is the fires/s ratio (target: under 2% lost).
func BenchmarkProbeOverhead(b *testing.B) {
	const delay = time.Millisecond
	b.Run("probes", func(b *testing.B) {
		timerFires(b, startPool(b, PoolOptions{Name: "bench"}).Loop(0), delay)
	})
	b.Run("base-no-probes", func(b *testing.B) {
		noProbes = true
		defer func() { noProbes = false }()
		timerFires(b, startPool(b, PoolOptions{Name: "bench"}).Loop(0), delay)
	})
}

// BenchmarkProbeCost: what the probe adds to one callback's bookkeeping
// (begin and end: timing, histogram, heart) with no trace running, beside
// the same bookkeeping with the probes removed from the path. Steadier
// than BenchmarkProbeOverhead on a shared machine; divide the difference
// by a timer's ns/op to get the share of timer throughput.
func BenchmarkProbeCost(b *testing.B) {
	run := func(b *testing.B) {
		p, err := NewPool(PoolOptions{Name: "bench", Concurrency: 1})
		if err != nil {
			b.Fatal(err)
		}
		l := p.Loop(0)
		cb := p.callback("bench")
		b.ReportAllocs()
		for b.Loop() {
			l.end(cb, l.begin(cb))
		}
	}
	b.Run("probes", run)
	b.Run("base-no-probes", func(b *testing.B) {
		noProbes = true
		defer func() { noProbes = false }()
		run(b)
	})
}
