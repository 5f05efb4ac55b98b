package watchdog

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

// A process started with StartProcess inside a running supervisor, whose
// reaper runs at every SIGCHLD (the child's restarts make plenty), keeps
// its exit status for its owner.
func TestStartProcessKeepsItsStatus(t *testing.T) {
	s, ev := newTestSupervisor(t, Config{Command: []string{"sh", "-c", "exit 1"}, Restart: RestartAlways, ZeroBackoff: true, Retries: 1000, Span: time.Nanosecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	waitFor(t, "restarts", func() bool { return countEvents[Started](ev) > 3 })
	for range 20 {
		wait, err := StartProcess(exec.Command("sh", "-c", "exit 7"))
		if err != nil {
			t.Fatal(err)
		}
		err = wait()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 7 {
			t.Fatalf("wait: %v, want exit status 7", err)
		}
	}
	cancel()
	<-done
}
