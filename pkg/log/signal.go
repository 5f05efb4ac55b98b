package log

import (
	"context"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// ServeReopen reopens the Graph's files each time the process receives
// one of sigs (SIGUSR1 when none are given), until ctx is done. It returns
// ctx.Err(). Reopen failures are counted in the outputs' Stats.
func (g *Graph) ServeReopen(ctx context.Context, sigs ...os.Signal) error {
	if len(sigs) == 0 {
		sigs = []os.Signal{unix.SIGUSR1}
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
			_ = g.Reopen() // failures are recorded per output
		}
	}
}
