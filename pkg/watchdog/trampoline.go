package watchdog

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/internal/trampoline"
)

// The trampoline (package internal/trampoline, linked into every binary
// that links this package) is the one place where the child's process
// attributes are applied between fork and exec. The supervisor starts its
// own executable (/proc/self/exe, readable whatever user the child is to
// become) through it when something needs it: a user or group change, a
// resource limit, a umask (procexec.go), or WATCHDOG_PID for the notify
// watchdog. It applies the limits, the umask and the directory, then the
// groups, gid and uid, sets WATCHDOG_PID, and LISTEN_PID whenever
// LISTEN_FDS is set, to its own pid, and execs the command. Its status
// pipe says whether the exec happened; a failure is reported as a start
// failure.
const (
	trampolineEnv       = trampoline.Env
	trampolinePathEnv   = trampoline.PathEnv
	trampolineAttrsEnv  = trampoline.AttrsEnv
	trampolineDirEnv    = trampoline.DirEnv
	trampolineStatusEnv = trampoline.StatusEnv
)

// trampolineExit is the status of a trampoline that could not exec.
const trampolineExit = trampoline.Exit

// encode describes a for the trampoline; the directory goes in a
// variable of its own.
func (a *procAttrs) encode() string {
	t := trampoline.Attrs{Umask: a.umask, SetUser: a.setUser, UID: a.uid, GID: a.gid, Groups: a.groups}
	for _, l := range a.limits {
		t.Limits = append(t.Limits, trampoline.Limit{Name: l.name, Resource: l.resource, Soft: l.Soft, Hard: l.Hard})
	}
	return t.Encode()
}

// trampolineStatus is the status pipe of a trampoline: the supervisor
// reads r, the trampoline holds w (the supervisor's copy is closed once
// the process started).
type trampolineStatus struct{ r, w *os.File }

// throughTrampoline makes cmd start the trampoline, which applies a (nil:
// nothing) and execs path. The status pipe is passed as the last of
// cmd.ExtraFiles: append nothing after it. Once the process started, read
// it with await; else close it.
func throughTrampoline(cmd *exec.Cmd, path string, a *procAttrs) (*trampolineStatus, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("watchdog: trampoline: pipe: %w", err)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	fd := 2 + len(cmd.ExtraFiles)
	cmd.Env = append(cmd.Env,
		trampolineEnv+"=1",
		trampolinePathEnv+"="+path,
		trampolineStatusEnv+"="+strconv.Itoa(fd),
	)
	if a != nil {
		if s := a.encode(); s != "" {
			cmd.Env = append(cmd.Env, trampolineAttrsEnv+"="+s)
		}
		if a.dir != "" {
			cmd.Env = append(cmd.Env, trampolineDirEnv+"="+a.dir)
			cmd.Dir = "" // the trampoline changes it, after the limits and umask
		}
	}
	cmd.Args = append([]string{cmd.Args[0]}, cmd.Args...)
	cmd.Path = selfExe()
	return &trampolineStatus{r: r, w: w}, nil
}

// trampolineBudget bounds the wait for a trampoline to exec: past it the
// child is watched as if it had.
const trampolineBudget = 10 * time.Second

// await reads the status pipe of a started trampoline: nil once it
// exec'd the command (EOF), else its reason. It closes the pipe.
func (t *trampolineStatus) await() error {
	t.w.Close()
	defer t.r.Close()
	t.r.SetReadDeadline(time.Now().Add(trampolineBudget))
	buf := make([]byte, 512)
	n, _ := t.r.Read(buf)
	if n == 0 {
		return nil
	}
	return errors.New(strings.TrimPrefix(string(buf[:n]), "mtev-supervise trampoline: "))
}

// close closes the pipe of a trampoline that did not start.
func (t *trampolineStatus) close() {
	t.w.Close()
	t.r.Close()
}

// selfExe is the running executable, for the trampoline. The path is
// resolved by the forked child, which is still this image: it works even
// when the executable was replaced or deleted on disk.
func selfExe() string { return "/proc/self/exe" }

// unixSignal maps "SIGSEGV" back to the signal.
func unixSignal(name string) syscall.Signal {
	return unix.SignalNum(name)
}
