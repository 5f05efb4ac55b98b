// Command sleeper prints "ready" and then sleeps forever in
// main.sleepForever. It never exits on its own: tests kill it (SIGKILL, or
// SIGQUIT for a runtime dump).
package main

import (
	"fmt"
	"time"
)

//go:noinline
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

func main() {
	fmt.Println("ready")
	sleepForever()
}
