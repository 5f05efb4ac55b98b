// Command spin-nopreempt prints "ready" and then spins forever in main.spin,
// a loop with no function calls. Run it with GODEBUG=asyncpreemptoff=1 and
// GOMAXPROCS=1: the spinning goroutine is then never preempted, nothing else
// in the process runs, and a cooperative dump (runtime.Stack from another
// goroutine) can never happen.
package main

import "fmt"

var counter uint64

//go:noinline
func spin() {
	for {
		counter++
	}
}

func main() {
	fmt.Println("ready")
	spin()
}
