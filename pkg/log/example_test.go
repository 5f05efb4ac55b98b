package log_test

import (
	"fmt"
	"os"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

func Example() {
	clock := func() time.Time { return time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC) }
	g := log.New(log.WithStderr(os.Stdout), log.WithClock(clock))
	defer g.Close()

	// Keep the last 100 lines of everything "app" logs, as JSON.
	err := g.Configure(
		log.Spec{Name: "recent", Type: "memory", Path: "100", Format: log.FormatJSON},
		log.Spec{Name: "app", Outlets: []string{"recent", "stderr"}},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	g.Facility("app/http").Log().Str("path", "/status").Int("code", 200).Msg("served")
	g.Facility("debug/eventer").Log().Msg("not shown: debug is disabled")

	for _, l := range g.Sink("recent").(*log.Ring).Since(1) {
		fmt.Printf("%d %s", l.Seq, l.Data)
	}
	// Output:
	// 2026-11-26T10:00:00.000000Z [app/http] served path=/status code=200
	// 1 {"facility":"app/http","time":"2026-11-26T10:00:00.000000Z","path":"/status","code":200,"message":"served"}
}
