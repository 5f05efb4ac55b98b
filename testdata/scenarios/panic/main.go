// Command panic prints "ready" and then panics in main.explode with the
// message "scenario: explode", so the process exits with status 2 and a
// goroutine trace on stderr.
package main

import "fmt"

//go:noinline
func explode() {
	panic("scenario: explode")
}

func main() {
	fmt.Println("ready")
	explode()
}
