package dump_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump"
)

// The parent asks for a dump; here both ends live in one process, where a
// real parent would pass the child's end in exec.Cmd.ExtraFiles and name it
// in MTEV_CONTROL_FD.
func Example() {
	parentEnd, childEnd, err := dump.Pair()
	if err != nil {
		log.Fatal(err)
	}
	defer parentEnd.Close()

	// Child side: the flight recorder starts early; Serve runs in a
	// goroutine of its own.
	rec, err := dump.StartFlightRecorder(2*time.Second, 4<<20)
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := dump.Serve(context.Background(), childEnd, dump.Options{Recorder: rec}); err != nil {
			log.Print(err)
		}
		childEnd.Close()
	})

	// Parent side.
	client, err := dump.NewClient(parentEnd)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "incident")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	parentEnd.Close() // the client holds its own descriptor
	res, err := client.Request(context.Background(), dir, 2*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range res.Files {
		if f.Err != "" {
			log.Fatal(f.Err)
		}
		fmt.Println(f.Kind, f.Size > 0)
	}
	client.Close() // Serve returns
	wg.Wait()
	// Output:
	// goroutines true
	// goroutines-grouped true
	// trace true
}
