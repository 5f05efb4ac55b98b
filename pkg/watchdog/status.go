package watchdog

import (
	"errors"
	"io/fs"
	"os/exec"
	"path/filepath"
)

// Exit statuses of a supervisor process (mtev-supervise run, or a program
// that supervises itself through pkg/runtime), as documented in the README.
const (
	ExitOK        = 0
	ExitFailure   = 1   // the supervisor itself failed
	ExitConfig    = 2   // bad flags or configuration
	ExitCrashLoop = 3   // Retries deaths within Span
	ExitSameCrash = 4   // SameCrashLimit incidents with one fingerprint
	ExitNotExec   = 126 // the command exists but cannot be executed
	ExitNotFound  = 127 // the command was not found
)

// ExitStatus maps what Serve returned to the supervisor's exit status.
// Under RestartNever the child's own status passes through (128+N for a
// signal).
func ExitStatus(err error) int {
	var ce *ChildExitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ce):
		return ce.Status()
	case errors.Is(err, ErrCrashLoop):
		return ExitCrashLoop
	case errors.Is(err, ErrSameCrash):
		return ExitSameCrash
	case errors.Is(err, ErrStart):
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return ExitNotFound
		}
		return ExitNotExec
	case errors.Is(err, ErrConfig):
		return ExitConfig
	}
	return ExitFailure
}

// DefaultStateDir is where journal and sockets live when nothing else is
// said: $MTEV_STATE_DIR, else $XDG_STATE_HOME/mtev-supervise (an absolute
// XDG_STATE_HOME only, as the XDG specification requires), else
// $HOME/.local/state/mtev-supervise. It returns "" when none is set.
func DefaultStateDir(getenv func(string) string) string {
	if d := getenv("MTEV_STATE_DIR"); d != "" {
		return d
	}
	if d := getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "mtev-supervise")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "mtev-supervise")
	}
	return ""
}
