package eventer

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// checkNoLeak records the goroutine count and, at cleanup, polls until the
// count is back to it.
func checkNoLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("goroutine leak: %d before, %d after\n%s", before, n, buf)
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// countingHeart is a Heart that counts its beats and remembers the thread
// that created it.
type countingHeart struct {
	name    string
	timeout time.Duration
	tid     int
	beats   atomic.Uint64
}

func (h *countingHeart) Beat() { h.beats.Add(1) }

// hearts collects the hearts a pool makes.
type hearts struct {
	mu sync.Mutex
	by map[string]*countingHeart
}

func (hs *hearts) newHeart(name string, timeout time.Duration) Heart {
	h := &countingHeart{name: name, timeout: timeout, tid: unix.Gettid()}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.by == nil {
		hs.by = map[string]*countingHeart{}
	}
	hs.by[name] = h
	return h
}

func (hs *hearts) get(name string) *countingHeart {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.by[name]
}

// startPool makes and starts a pool, stopped at cleanup.
func startPool(t testing.TB, opts PoolOptions) *Pool {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "test"
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 1
	}
	p, err := NewPool(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// onLoop runs fn on l and waits for it.
func onLoop(t testing.TB, l *Loop, fn func()) {
	t.Helper()
	done := make(chan struct{})
	if err := l.Post(func() { fn(); close(done) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("loop did not run the posted closure")
	}
}

// goid returns the calling goroutine's id, from its stack header.
func goid() uint64 {
	var buf [64]byte
	s := string(buf[:runtime.Stack(buf[:], false)])
	s = strings.TrimPrefix(s, "goroutine ")
	id, _ := strconv.ParseUint(s[:strings.IndexByte(s, ' ')], 10, 64)
	return id
}

// loopGoroutine returns the id of the goroutine that runs l.
func loopGoroutine(t testing.TB, l *Loop) uint64 {
	var id uint64
	onLoop(t, l, func() { id = goid() })
	return id
}

// modes are the two supported loop designs; tests that concern threads
// run under both.
var modes = []struct {
	name   string
	locked bool
}{{"goroutine", false}, {"locked", true}}
