package delve_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace/delve"
)

// A supervisor checks the child's binary when it starts, and captures it
// from outside when a heart stalls. The child must not be waited for while
// the capture runs.
func Example() {
	var childExe string // the child's executable
	var childPID int    // its pid
	var heartTID int    // the OS thread that last beat the stalled heart

	if _, err := delve.Preload(childExe, nil); err != nil {
		fmt.Println("captures will not work:", err) // e.g. built with -s -w
	}
	res, err := delve.Capture(context.Background(), childPID, delve.Options{Budget: 5 * time.Second})
	switch {
	case errors.Is(err, delve.ErrBudget):
		fmt.Println("partial trace:", len(res.Goroutines), "goroutines")
	case err != nil:
		fmt.Println("no trace:", err)
		return
	}
	if g := res.OnThread(heartTID); g != nil {
		g.Culprit = true
	}
	for _, g := range res.Culprits() {
		fmt.Println("culprit:", g.ID, g.State, g.Frames[0])
	}
}
