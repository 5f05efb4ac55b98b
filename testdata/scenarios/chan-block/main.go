// Command chan-block hangs with the main goroutine blocked forever on a
// channel receive in main.recvForever. Once main is blocked and two garbage
// collections have recorded its wait start, a helper prints "ready".
package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

//go:noinline
func recvForever(ch chan int) int {
	return <-ch // nobody ever sends
}

func main() {
	// A pending timer keeps the runtime's deadlock detector quiet.
	keep := time.AfterFunc(24*time.Hour, func() {})
	defer keep.Stop()

	go func() {
		waitFor(func(dump string) bool { return strings.Contains(dump, "goroutine 1 [chan receive") })
		// The runtime stamps a blocked goroutine's wait start
		// (g.waitsince) with the start time of the previous
		// collection, so it takes two.
		runtime.GC()
		runtime.GC()
		fmt.Println("ready")
	}()
	ch := make(chan int)
	v := recvForever(ch)
	fmt.Fprintln(os.Stderr, "chan-block: unexpectedly received", v)
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
