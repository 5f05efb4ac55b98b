// Command syscall-block hangs with the main goroutine blocked in a read(2)
// system call, in main.readPipeForever, on a pipe whose write end is held
// open but never written. The read is a raw system call (not the network
// poller), so the goroutine is in state "syscall" and its OS thread is
// blocked in the kernel. Once main is in the system call a helper prints
// "ready".
package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
)

//go:noinline
func readPipeForever(fd int) (int, error) {
	buf := make([]byte, 1)
	return syscall.Read(fd, buf)
}

func main() {
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		fmt.Fprintln(os.Stderr, "syscall-block: pipe:", err)
		os.Exit(1)
	}
	go func() {
		waitFor(func(dump string) bool { return strings.Contains(dump, "goroutine 1 [syscall") })
		fmt.Println("ready")
	}()
	n, err := readPipeForever(p[0])
	fmt.Fprintln(os.Stderr, "syscall-block: unexpectedly read", n, err)
	runtime.KeepAlive(p)
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
