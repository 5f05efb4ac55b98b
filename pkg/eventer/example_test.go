package eventer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
)

func Example() {
	sys, err := eventer.New(eventer.Options{
		Concurrency: 2,
		Pools:       []eventer.PoolOptions{{Name: "io", Concurrency: 1, Timeout: 2 * time.Second}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := sys.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer sys.Stop()

	loop := sys.Pool("io").Loop(0)
	done := make(chan struct{})
	// Blocking work goes to a queue; its completion comes back to the loop.
	err = sys.Queue(eventer.DefaultQueue).Add(context.Background(), eventer.Job{
		Name: "resolve",
		Loop: loop,
		Work: func(ctx context.Context) error { return nil },
		Done: func(err error) {
			fmt.Println("completed on", loop.Name(), "err:", err)
			loop.AfterFunc("bye", time.Millisecond, func() { close(done) })
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	<-done
	// Output: completed on e:io/0 err: <nil>
}
