package report

import (
	"context"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump"
)

// BenchmarkReportStall: from ReportStall in the child to the report in the
// supervisor's hands (one report in flight at a time), against a ping
// round trip on the dump channel, the child's other channel.
func BenchmarkReportStall(b *testing.B) {
	b.Run("deliver", func(b *testing.B) {
		p, c, err := Pair()
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		defer c.Close()
		snd, _ := NewSender(c)
		defer snd.Close()
		snd.limit = Limiter{Burst: 1 << 30}
		rcv, _ := NewReceiver(p)
		rcv.Limit = Limiter{Burst: 1 << 30}
		got := make(chan struct{}, 1)
		go rcv.Serve(func(Stall) { got <- struct{}{} }, nil)
		defer rcv.Close()
		st := Stall{Source: "http", Name: "GET /slow", Elapsed: 6 * time.Second, Deadline: 5 * time.Second,
			Labels: map[string]string{"mtev.route": "GET /slow"}}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if err := snd.Send(st); err != nil {
				b.Fatal(err)
			}
			<-got
		}
	})
	b.Run("send", func(b *testing.B) {
		// The child's cost alone: Send never waits for the supervisor.
		p, c, err := Pair()
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		defer c.Close()
		snd, _ := NewSender(c)
		defer snd.Close()
		snd.limit = Limiter{Burst: 1 << 30}
		rcv, _ := NewReceiver(p)
		rcv.Limit = Limiter{Burst: 1 << 30}
		go rcv.Serve(func(Stall) {}, nil)
		defer rcv.Close()
		st := Stall{Source: "http", Name: "GET /slow"}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			snd.Send(st) // a full socket drops: still the child's cost
		}
	})
	b.Run("base-dump-ping", func(b *testing.B) {
		parent, child, err := dump.Pair()
		if err != nil {
			b.Fatal(err)
		}
		defer child.Close()
		cl, err := dump.NewClient(parent)
		parent.Close()
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go dump.Serve(ctx, child, dump.Options{})
		defer cl.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if err := cl.Ping(ctx, 5*time.Second); err != nil {
				b.Fatal(err)
			}
		}
	})
}
