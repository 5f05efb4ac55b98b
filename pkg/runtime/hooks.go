package runtime

import (
	"fmt"
	"os"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
)

// ChildStart is the value of ChildStartHook.
type ChildStart struct {
	Name       string // the application's name
	PID        int
	StartCount int  // 1 for the first child, 2 for the first restart; 0 unsupervised
	Supervised bool // a supervisor watches this process
	Runtime    *Runtime
}

// ChildStartHook runs in the child once the eventer and the modules are
// up, before App.Start: a module attached in its init sees every start,
// restarts included (StartCount). ABORT stops the start (the child exits
// non-zero, and a supervisor restarts it per its policy). Functions
// attached by name see {"name","pid","start_count","supervised"}.
var ChildStartHook = hook.New[ChildStart]("child_start", "the service process started (after eventer and modules, before App.Start); ABORT stops it").
	Describe(func(c ChildStart) any {
		return struct {
			Name       string `json:"name"`
			PID        int    `json:"pid"`
			StartCount int    `json:"start_count"`
			Supervised bool   `json:"supervised"`
		}{c.Name, c.PID, c.StartCount, c.Supervised}
	})

// childStarted invokes ChildStartHook.
func childStarted(app App, rt *Runtime) error {
	if ChildStartHook.Invoke(ChildStart{Name: app.Name, PID: os.Getpid(), StartCount: rt.StartCount, Supervised: rt.Supervised, Runtime: rt}) == hook.Abort {
		return fmt.Errorf("runtime: start: aborted by hook %s", ChildStartHook.Name())
	}
	return nil
}
