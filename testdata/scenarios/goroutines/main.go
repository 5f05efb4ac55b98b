// Command goroutines parks N goroutines, each at a stack depth of five
// functions (main.park1 ... main.park5, blocked on a channel receive), then
// prints "ready" and hangs main in main.hangMain. N comes from the first
// argument, else from SCENARIO_GOROUTINES, else 10. Used to measure trace
// capture against goroutine count.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

var never = make(chan struct{})

//go:noinline
func park1(started *sync.WaitGroup) { park2(started) }

//go:noinline
func park2(started *sync.WaitGroup) { park3(started) }

//go:noinline
func park3(started *sync.WaitGroup) { park4(started) }

//go:noinline
func park4(started *sync.WaitGroup) { park5(started) }

//go:noinline
func park5(started *sync.WaitGroup) {
	started.Done()
	<-never
}

//go:noinline
func hangMain() {
	<-never
}

func count() (int, error) {
	s := os.Getenv("SCENARIO_GOROUTINES")
	if len(os.Args) > 1 {
		s = os.Args[1]
	}
	if s == "" {
		return 10, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad goroutine count %q", s)
	}
	return n, nil
}

func main() {
	n, err := count()
	if err != nil {
		fmt.Fprintln(os.Stderr, "goroutines:", err)
		os.Exit(2)
	}
	// A pending timer keeps the runtime's deadlock detector quiet.
	keep := time.AfterFunc(24*time.Hour, func() {})
	defer keep.Stop()

	var started sync.WaitGroup
	started.Add(n)
	for range n {
		go park1(&started)
	}
	started.Wait()
	fmt.Println("ready")
	hangMain()
}
