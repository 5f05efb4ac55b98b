// Command fatal-concurrent-map prints "ready" and then writes one map from
// several goroutines in main.scribble until the runtime detects it and dies
// with "fatal error: concurrent map writes" (exit status 2, not recoverable).
package main

import (
	"fmt"
	"os"
	"sync"
)

//go:noinline
func scribble(m map[int]int, seed int) {
	for i := 0; ; i++ {
		m[(i*7+seed)%64] = i
	}
}

func main() {
	fmt.Println("ready")
	m := map[int]int{}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scribble(m, g)
		}()
	}
	wg.Wait()
	fmt.Fprintln(os.Stderr, "fatal-concurrent-map: unexpectedly survived")
	os.Exit(1)
}
