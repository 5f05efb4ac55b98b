// Command many starts MANY_N goroutines (default 10000) blocked in ten
// different places, then panics: with GOTRACEBACK=all its output is a large
// real dump.
package main

import (
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	n, err := strconv.Atoi(os.Getenv("MANY_N"))
	if err != nil || n <= 0 {
		n = 10000
	}
	var mu sync.Mutex
	mu.Lock()
	block := make(chan int) // nobody ever sends on it or closes it
	var started sync.WaitGroup
	for i := 0; i < n; i++ {
		started.Add(1)
		switch i % 5 {
		case 0:
			go recvLoop(&started, block)
		case 1:
			go lockLoop(&started, &mu)
		case 2:
			go selectLoop(&started, block)
		case 3:
			go sleepLoop(&started)
		case 4:
			go nested(&started, block, i%3)
		}
	}
	started.Wait()
	time.Sleep(10 * time.Millisecond) // let the last ones park
	panic("dump of " + strconv.Itoa(n) + " goroutines")
}

func recvLoop(wg *sync.WaitGroup, c chan int) { wg.Done(); <-c }

func lockLoop(wg *sync.WaitGroup, mu *sync.Mutex) { wg.Done(); mu.Lock() }

func selectLoop(wg *sync.WaitGroup, c chan int) {
	wg.Done()
	never := make(chan int)
	select {
	case <-c:
	case <-never:
	}
}

func sleepLoop(wg *sync.WaitGroup) { wg.Done(); time.Sleep(time.Hour) }

func nested(wg *sync.WaitGroup, c chan int, depth int) {
	if depth > 0 {
		nested(wg, c, depth-1)
		return
	}
	wg.Done()
	<-c
}
