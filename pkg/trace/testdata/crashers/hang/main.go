// Command hang blocks its main goroutine on a mutex it already holds while
// another goroutine keeps sleeping (so the runtime sees no deadlock). It
// prints "ready" once blocked; SIGQUIT makes the runtime dump it.
package main

import (
	"fmt"
	"sync"
	"time"
)

func main() {
	var mu sync.Mutex
	mu.Lock()
	go ticker()
	fmt.Println("ready")
	stuck(&mu)
}

func ticker() {
	for {
		time.Sleep(time.Second)
	}
}

func stuck(mu *sync.Mutex) { mu.Lock() }
