// Command deadlock blocks every goroutine on a channel nobody sends on.
package main

import "sync"

func main() {
	var mu sync.Mutex
	mu.Lock()
	go waitLock(&mu)
	waitForever(make(chan int))
}

func waitLock(mu *sync.Mutex) { mu.Lock() }

func waitForever(c chan int) { <-c }
