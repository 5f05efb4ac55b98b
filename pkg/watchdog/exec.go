package watchdog

import (
	"os/exec"

	"github.com/mtev-supervise/mtev-supervise/internal/reap"
)

// StartProcess starts cmd from code running inside a supervisor process
// (an Events or Output hook, a capture method), so that the supervisor's
// orphan reaper never takes its exit status. Wait for it with the
// returned function, not cmd.Wait: it waits and then lets the reaper see
// the pid again.
func StartProcess(cmd *exec.Cmd) (wait func() error, err error) {
	if err := reap.Start(cmd); err != nil {
		return nil, err
	}
	return func() error {
		defer reap.Release(cmd.Process.Pid)
		return cmd.Wait()
	}, nil
}
