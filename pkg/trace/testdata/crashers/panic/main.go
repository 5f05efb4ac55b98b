// Command panic panics with a value that varies between runs.
package main

import (
	"fmt"
	"os"
)

func main() {
	go idle()
	handle(os.Getpid())
}

func idle() { select {} }

func handle(n int) {
	panic(fmt.Sprintf("boom: request %d failed at 0x%x", n, n*4096))
}
