// Command nilderef dereferences a nil pointer.
package main

type config struct{ name string }

var global *config

func main() {
	println(lookup(global))
}

//go:noinline
func lookup(c *config) string { return c.name }
