// Command mtev-supervise supervises a service: it starts it, watches it
// through heartbeats or the notify protocol, records every crash and stall
// with the goroutine traces that explain it, and restarts it with backoff.
package main

import (
	"os"

	"github.com/mtev-supervise/mtev-supervise/internal/cli"
	// Capture from outside (Delve) in the supervisor's capture chain.
	_ "github.com/mtev-supervise/mtev-supervise/pkg/trace/delve"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
