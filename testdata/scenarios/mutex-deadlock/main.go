// Command mutex-deadlock hangs with two goroutines that take two mutexes in
// opposite order: main.lockOrderA holds muA and waits for muB, main.lockOrderB
// holds muB and waits for muA. Both carry the pprof label "role" (their own
// function name). Once both are blocked in sync.(*Mutex).Lock and two garbage
// collections have recorded their wait start, it prints "ready"; main then
// waits on a WaitGroup forever.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"
)

var muA, muB sync.Mutex

// holding counts goroutines holding their first mutex.
var holding sync.WaitGroup

//go:noinline
func lockOrderA() {
	muA.Lock()
	holding.Done()
	holding.Wait()
	muB.Lock() // deadlock: lockOrderB holds muB
	muB.Unlock()
	muA.Unlock()
}

//go:noinline
func lockOrderB() {
	muB.Lock()
	holding.Done()
	holding.Wait()
	muA.Lock() // deadlock: lockOrderA holds muA
	muA.Unlock()
	muB.Unlock()
}

func main() {
	// A pending timer keeps the runtime's deadlock detector quiet, so the
	// process hangs instead of dying with "all goroutines are asleep".
	keep := time.AfterFunc(24*time.Hour, func() {})
	defer keep.Stop()

	var done sync.WaitGroup
	holding.Add(2)
	for _, f := range []struct {
		name string
		fn   func()
	}{{"lockOrderA", lockOrderA}, {"lockOrderB", lockOrderB}} {
		done.Add(1)
		go pprof.Do(context.Background(), pprof.Labels("role", f.name), func(context.Context) {
			defer done.Done()
			f.fn()
		})
	}
	waitFor(func(dump string) bool { return strings.Count(dump, "[sync.Mutex.Lock") >= 2 })
	// The runtime stamps a blocked goroutine's wait start (g.waitsince)
	// with the start time of the previous collection, so it takes two.
	runtime.GC()
	runtime.GC()
	fmt.Println("ready")
	done.Wait()
	fmt.Fprintln(os.Stderr, "mutex-deadlock: unexpectedly unblocked")
	os.Exit(1)
}

// waitFor polls the goroutine dump of this process until cond holds.
func waitFor(cond func(dump string) bool) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if cond(string(buf[:n])) {
			return
		}
		runtime.Gosched()
	}
}
