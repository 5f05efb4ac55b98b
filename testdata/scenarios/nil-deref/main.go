// Command nil-deref prints "ready" and then dereferences a nil pointer in
// main.derefNil: the runtime turns the SIGSEGV into a panic ("invalid memory
// address or nil pointer dereference") and the process exits with status 2.
package main

import (
	"fmt"
	"os"
)

type account struct {
	balance int
}

//go:noinline
func derefNil(a *account) int {
	return a.balance
}

//go:noinline
func lookup(name string) *account {
	if name == "exists" {
		return &account{balance: 1}
	}
	return nil
}

func main() {
	fmt.Println("ready")
	fmt.Fprintln(os.Stderr, derefNil(lookup("missing")))
}
