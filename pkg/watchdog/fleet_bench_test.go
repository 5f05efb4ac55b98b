package watchdog

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkFleetUp: from nothing to every child running, then a stop of
// everything, for services run by a Fleet (3 in a dependency chain, each
// waiting for the one before it to start) beside one Supervisor alone (the
// baseline: the cost of one service without a Fleet). The child is the C
// respawn child in its "pause" mode: up until signalled.
func BenchmarkFleetUp(b *testing.B) {
	child := respawnChild(b)
	cfg := func(dir, name string) Config {
		return Config{Name: name, Command: []string{child, filepath.Join(dir, name+".stamps"), "pause"}, StateDir: dir, Hearts: HeartsOff, StopTimeout: 5 * time.Second}
	}
	b.Run("base-supervisor", func(b *testing.B) {
		dir := b.TempDir()
		for b.Loop() {
			started := make(chan struct{}, 1)
			s, err := New(cfg(dir, "one"), Options{Events: func(e Event) {
				if _, ok := e.(Started); ok {
					started <- struct{}{}
				}
			}})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx) }()
			<-started
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("fleet-chain-%d", n), func(b *testing.B) {
			dir := b.TempDir()
			for b.Loop() {
				started := make(chan struct{}, n)
				var specs []ServiceSpec
				for i := range n {
					sp := ServiceSpec{Config: cfg(dir, fmt.Sprintf("s%d", i)), Options: Options{Events: func(e Event) {
						if _, ok := e.(Started); ok {
							started <- struct{}{}
						}
					}}}
					if i > 0 {
						sp.Depends = []string{fmt.Sprintf("s%d", i-1)}
					}
					specs = append(specs, sp)
				}
				f, err := NewFleet(specs, FleetOptions{StateDir: dir})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- f.Serve(ctx) }()
				for range n {
					<-started
				}
				cancel()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
