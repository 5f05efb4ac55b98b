package eventer

import (
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestPostRunsOnLoopInOrder(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testPostRunsOnLoopInOrder(t, m.locked) })
	}
}

func testPostRunsOnLoopInOrder(t *testing.T, locked bool) {
	checkNoLeak(t)
	p := startPool(t, PoolOptions{Concurrency: 2, LockOSThread: locked})
	l := p.Loop(1)
	if got := l.ThreadID() != 0; got != locked {
		t.Fatalf("thread id %d for a loop locked=%v", l.ThreadID(), locked)
	}
	loopG := loopGoroutine(t, l)
	const senders, each = 4, 500
	var mu sync.Mutex
	seen := make([][]int, senders)
	var wrongThread atomic.Int32
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := l.Post(func() {
					if goid() != loopG || locked && unix.Gettid() != l.ThreadID() {
						wrongThread.Add(1)
					}
					mu.Lock()
					seen[s] = append(seen[s], i)
					mu.Unlock()
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	onLoop(t, l, func() {})
	for s := range senders {
		if len(seen[s]) != each || !slices.IsSorted(seen[s]) {
			t.Fatalf("sender %d: %d closures, in order %v", s, len(seen[s]), slices.IsSorted(seen[s]))
		}
	}
	if n := wrongThread.Load(); n != 0 {
		t.Fatalf("%d closures ran off the loop's goroutine or thread", n)
	}
	if locked && p.Loop(0).ThreadID() == l.ThreadID() {
		t.Fatal("two loops share a thread")
	}
}

func TestTimers(t *testing.T) {
	checkNoLeak(t)
	p := startPool(t, PoolOptions{})
	l := p.Loop(0)

	t.Run("one-shot fires once, in deadline order", func(t *testing.T) {
		var mu sync.Mutex
		var order []int
		done := make(chan struct{})
		for i, d := range []time.Duration{30, 10, 20} {
			_, err := l.AfterFunc("order", d*time.Millisecond, func() {
				mu.Lock()
				order = append(order, i)
				if len(order) == 3 {
					close(done)
				}
				mu.Unlock()
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		<-done
		onLoop(t, l, func() {})
		if !slices.Equal(order, []int{1, 2, 0}) {
			t.Fatalf("fired in order %v, want [1 2 0]", order)
		}
	})

	t.Run("stopped before expiry never fires", func(t *testing.T) {
		var fired atomic.Bool
		tm, err := l.AfterFunc("never", time.Hour, func() { fired.Store(true) })
		if err != nil {
			t.Fatal(err)
		}
		if !tm.Stop() {
			t.Fatal("Stop of a pending timer returned false")
		}
		if tm.Stop() {
			t.Fatal("second Stop returned true")
		}
		onLoop(t, l, func() {
			if len(l.timers) != 0 {
				t.Errorf("%d timers left in the heap", len(l.timers))
			}
		})
		if fired.Load() {
			t.Fatal("stopped timer fired")
		}
	})

	t.Run("periodic fires until stopped", func(t *testing.T) {
		tm, err := l.Every("tick", time.Millisecond, func() {})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "five ticks", func() bool { return tm.Fires() >= 5 })
		if !tm.Stop() {
			t.Fatal("Stop of a running periodic timer returned false")
		}
		onLoop(t, l, func() {}) // any fire in progress has ended
		n := tm.Fires()
		later := make(chan struct{})
		if _, err := l.AfterFunc("later", 20*time.Millisecond, func() { close(later) }); err != nil {
			t.Fatal(err)
		}
		<-later
		if got := tm.Fires(); got != n {
			t.Fatalf("periodic timer fired %d times after Stop", got-n)
		}
	})

	t.Run("bad period", func(t *testing.T) {
		if _, err := l.Every("bad", 0, func() {}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
	})
}

func TestWatchPipe(t *testing.T) {
	checkNoLeak(t)
	p := startPool(t, PoolOptions{})
	l := p.Loop(0)
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	w := fds[1]
	defer unix.Close(w)
	got := make(chan string, 10)
	eof := make(chan struct{})
	loopG := loopGoroutine(t, l)
	f, err := l.Watch("pipe-read", fds[0], Read, func(f *FD, ready Interest) {
		if goid() != loopG {
			t.Error("callback off the loop goroutine")
		}
		buf := make([]byte, 64)
		for {
			n, err := f.Read(buf)
			if errors.Is(err, ErrWouldBlock) {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			if n == 0 {
				f.Close()
				close(eof)
				return
			}
			got <- string(buf[:n])
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(w, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "hello" {
		t.Fatalf("read %q", s)
	}
	snap := p.Snapshot(time.Second)
	if fdl := snap.Loops[0].FDs; len(fdl) != 1 || fdl[0].FD != f.Fd() || fdl[0].Name != "pipe-read" || fdl[0].Interest != "r--" {
		t.Fatalf("snapshot fds = %+v", fdl)
	}
	unix.Close(w)
	<-eof
	onLoop(t, l, func() {
		if len(l.fds) != 0 {
			t.Errorf("%d descriptors still watched", len(l.fds))
		}
	})
	if _, err := unix.FcntlInt(uintptr(f.Fd()), unix.F_GETFD, 0); err == nil {
		// The number may have been reused by then; only a still-open pipe
		// end is a failure.
		var st unix.Stat_t
		if unix.Fstat(f.Fd(), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
			t.Fatal("closed FD's pipe is still open")
		}
	}
}

// echoOn serves TCP echo on the pool: the listener on loop 0, connections
// spread over the loops.
func echoOn(t testing.TB, p *Pool, ln net.Listener) *FD {
	t.Helper()
	lf, err := p.Loop(0).WatchConn("accept", ln.(*net.TCPListener), Read, func(f *FD, _ Interest) {
		for {
			nfd, _, err := f.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, err = p.Next().Watch("echo", nfd, Read, func(c *FD, _ Interest) {
				for {
					n, err := c.Read(buf)
					if errors.Is(err, ErrWouldBlock) {
						return
					}
					if err != nil || n == 0 {
						c.Close()
						return
					}
					// Small messages: a short write on loopback means the
					// peer stopped reading; the test client never does.
					if _, err := c.Write(buf[:n]); err != nil {
						c.Close()
						return
					}
					if n < len(buf) {
						// Drained; level-triggered epoll calls again
						// when more arrives.
						return
					}
				}
			})
			if err != nil {
				unix.Close(nfd)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return lf
}

func TestEchoOverConns(t *testing.T) {
	checkNoLeak(t)
	p := startPool(t, PoolOptions{Concurrency: 2})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoOn(t, p, ln)
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			msg := []byte{byte(c), 1, 2, 3, 4, 5, 6, 7}
			buf := make([]byte, len(msg))
			for range 50 {
				if _, err := conn.Write(msg); err != nil {
					t.Error(err)
					return
				}
				if _, err := io.ReadFull(conn, buf); err != nil {
					t.Error(err)
					return
				}
				if !slices.Equal(buf, msg) {
					t.Errorf("echo %v, want %v", buf, msg)
					return
				}
			}
		}()
	}
	wg.Wait()
	snap := p.Snapshot(time.Second)
	if h, ok := snap.Callbacks["echo"]; !ok || h.Count < 8 {
		t.Fatalf("echo callback histogram = %+v", h)
	}
	// Stopping the pool closes the listener it still watches.
	p.Stop()
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("listener still accepts after the pool stopped")
	}
}

func TestBlockedCallbackStallsOnlyItsHeart(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testBlockedCallbackStallsOnlyItsHeart(t, m.locked) })
	}
}

func testBlockedCallbackStallsOnlyItsHeart(t *testing.T, locked bool) {
	checkNoLeak(t)
	var hs hearts
	p := startPool(t, PoolOptions{Name: "io", Concurrency: 2, Timeout: 100 * time.Millisecond, NewHeart: hs.newHeart, LockOSThread: locked})
	for i, l := range p.Loops() {
		h := hs.get(l.Name())
		if h == nil {
			t.Fatalf("no heart named %s", l.Name())
		}
		if h.timeout != 100*time.Millisecond {
			t.Errorf("heart %s timeout %v", h.name, h.timeout)
		}
		if locked && h.tid != l.ThreadID() {
			t.Errorf("heart %s made on thread %d, loop runs on %d", h.name, h.tid, l.ThreadID())
		}
		if want := "e:io/" + string(rune('0'+i)); l.Name() != want {
			t.Errorf("loop name %q, want %q", l.Name(), want)
		}
	}
	h0, h1 := hs.get("e:io/0"), hs.get("e:io/1")

	entered, release := make(chan struct{}), make(chan struct{})
	if err := p.Loop(1).Post(func() { close(entered); <-release }); err != nil {
		t.Fatal(err)
	}
	<-entered
	stuckAt := h1.beats.Load()
	base := h0.beats.Load()
	// An idle loop wakes at least every Timeout/20 = 5 ms: loop 0 beats on.
	waitFor(t, "loop 0 to keep beating", func() bool { return h0.beats.Load() >= base+20 })
	if got := h1.beats.Load(); got != stuckAt {
		t.Fatalf("blocked loop's heart beat %d times while blocked", got-stuckAt)
	}
	snap := p.Snapshot(50 * time.Millisecond)
	if l1 := snap.Loops[1]; l1.Responsive || l1.Running == nil || l1.Running.Name != "post" {
		t.Fatalf("snapshot of the blocked loop = %+v", l1)
	}
	if !snap.Loops[0].Responsive || snap.Loops[0].ThreadID != p.Loop(0).ThreadID() {
		t.Fatalf("snapshot of the idle loop = %+v", snap.Loops[0])
	}
	close(release)
	waitFor(t, "loop 1 to beat again", func() bool { return h1.beats.Load() > stuckAt })
}

func TestSlowCallbackReported(t *testing.T) {
	checkNoLeak(t)
	slow := make(chan SlowCallback, 4)
	p := startPool(t, PoolOptions{SlowThreshold: 20 * time.Millisecond, OnSlow: func(s SlowCallback) { slow <- s }})
	l := p.Loop(0)
	onLoop(t, l, func() {}) // fast: not reported
	if _, err := l.AfterFunc("sluggish", 0, func() { time.Sleep(30 * time.Millisecond) }); err != nil {
		t.Fatal(err)
	}
	s := <-slow
	if s.Name != "sluggish" || s.Pool != "test" || s.Loop != 0 || s.Duration < 20*time.Millisecond {
		t.Fatalf("slow report %+v", s)
	}
	snap := p.Snapshot(time.Second)
	if len(snap.Slow) != 1 || snap.Slow[0].Name != "sluggish" || snap.Loops[0].Slow != 1 {
		t.Fatalf("snapshot slow = %+v, loop slow count %d", snap.Slow, snap.Loops[0].Slow)
	}
}

func TestStoppedLoopRefusesWork(t *testing.T) {
	checkNoLeak(t)
	p := startPool(t, PoolOptions{})
	l := p.Loop(0)
	p.Stop()
	p.Stop() // idempotent
	if err := l.Post(func() {}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Post after stop: %v", err)
	}
	if _, err := l.AfterFunc("x", 0, func() {}); !errors.Is(err, ErrStopped) {
		t.Fatalf("AfterFunc after stop: %v", err)
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if _, err := l.Watch("x", fds[0], Read, func(*FD, Interest) {}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Watch after stop: %v", err)
	}
	if err := p.Start(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after stop: %v", err)
	}
}

func TestPoolOptionsRejected(t *testing.T) {
	for _, o := range []PoolOptions{
		{Name: "", Concurrency: 1},
		{Name: "a b", Concurrency: 1},
		{Name: "x", Concurrency: 0},
		{Name: "x", Concurrency: 1, Timeout: -1},
	} {
		if _, err := NewPool(o); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewPool(%+v) err = %v, want ErrInvalid", o, err)
		}
	}
}

func TestSetInterest(t *testing.T) {
	checkNoLeak(t)
	p := startPool(t, PoolOptions{})
	l := p.Loop(0)
	if l.ThreadID() != 0 {
		t.Fatalf("unlocked loop reports thread %d", l.ThreadID())
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[1])
	writable := make(chan struct{}, 1)
	readable := make(chan string, 1)
	var writes atomic.Int32
	f, err := l.Watch("pair", pair[0], Write, func(f *FD, ready Interest) {
		if ready&Write != 0 {
			writes.Add(1)
			select {
			case writable <- struct{}{}:
			default:
			}
		}
		if ready&Read != 0 {
			buf := make([]byte, 16)
			n, err := f.Read(buf)
			if err == nil {
				readable <- string(buf[:n])
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	<-writable
	if err := f.SetInterest(Read); err != nil {
		t.Fatal(err)
	}
	onLoop(t, l, func() {}) // the new interest is in force
	n := writes.Load()
	if _, err := unix.Write(pair[1], []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if s := <-readable; s != "ping" {
		t.Fatalf("read %q", s)
	}
	if got := writes.Load(); got != n {
		t.Fatalf("%d write callbacks after interest dropped Write", got-n)
	}
	f.Close()
	if err := f.SetInterest(Write); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetInterest after Close: %v", err)
	}
}
