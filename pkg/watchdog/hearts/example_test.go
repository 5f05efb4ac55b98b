package hearts_test

import (
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/hearts"
)

// A child's event loop beats its heart on every pass. Run unsupervised,
// OpenFromEnv reports ErrNotSupervised and the nil table and heart make
// every call a no-op, so the loop needs no special case.
func Example_child() {
	tbl, err := hearts.OpenFromEnv()
	if err != nil && !errors.Is(err, hearts.ErrNotSupervised) {
		log.Fatal(err)
	}
	heart, err := tbl.NewHeart("e:default/0", 2*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	var beater interface{ Beat() } = heart // what the eventer takes
	for range 3 {
		beater.Beat()
	}
	tbl.Ready()
	fmt.Println(tbl.StartCount(), heart.Slot())
	// Output: 0 -1
}

// The parent creates the table and drives a Monitor from its loop. Here the
// heart lives in the same process and the clock is advanced by hand.
func Example_monitor() {
	tbl, f, err := hearts.Create(16)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close() // a real parent passes f in exec.Cmd.ExtraFiles
	defer tbl.Close()

	heart, err := tbl.NewHeart("e:default/1", 100*time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	m := hearts.NewMonitor(tbl, hearts.MonitorConfig{Grace: 50 * time.Millisecond})
	now := time.Unix(0, 0)
	m.Reset(now)
	heart.Beat()
	m.Check(now)
	fmt.Println("poll every", m.PollInterval())
	for _, after := range []time.Duration{120 * time.Millisecond, 40 * time.Millisecond} {
		now = now.Add(after)
		for _, e := range m.Check(now) {
			fmt.Println(e.Kind, e.Name, e.Age)
		}
	}
	// Output:
	// poll every 5ms
	// soft stall e:default/1 120ms
	// hard stall e:default/1 160ms
}
