package watchdog

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/internal/reap"
)

// spawner starts children from one goroutine locked to its OS thread for
// the spawner's whole life. PR_SET_PDEATHSIG fires when the thread that
// forked a child exits, not the process; Go ends a thread when a goroutine
// that locked it returns without unlocking (Delve's ptrace goroutine does
// that), so a child forked from an ordinary thread could be killed long
// before the supervisor dies. A thread that never runs anything else never
// exits until the spawner is closed.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
	once sync.Once
}

type spawnReq struct {
	cmd   *exec.Cmd
	reply chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	started := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		// Never unlocked: when this goroutine returns the thread exits,
		// and children still alive get their death signal.
		close(started)
		defer close(s.done)
		for r := range s.reqs {
			r.reply <- reap.Start(r.cmd)
		}
	}()
	<-started
	return s
}

// start starts cmd on the spawner's thread.
func (s *spawner) start(cmd *exec.Cmd) error {
	reply := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, reply: reply}
	return <-reply
}

// close ends the spawner thread. Children forked from it that are still
// alive receive their death signal.
func (s *spawner) close() {
	s.once.Do(func() { close(s.reqs) })
	<-s.done
}

// inTree reports whether pid is root, in root's process group, or a
// descendant of root.
func inTree(pid, root int) bool {
	for range 64 {
		if pid == root {
			return true
		}
		if pid <= 1 {
			return false
		}
		st, err := reap.ReadStat(pid)
		if err != nil {
			return false
		}
		if st.Pgrp == root {
			return true
		}
		pid = st.PPid
	}
	return false
}

// setSubreaper makes this process the reaper of orphans in its subtree.
func setSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("watchdog: prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return nil
}

// waitPidfd blocks until the process behind pidfd has exited. A pidfd polls
// readable only on exit, not on ptrace stops, so waiting this way never
// disturbs a capture attached to the child.
func waitPidfd(fd int) error {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("watchdog: poll pidfd: %w", err)
		}
	}
}

// signalGroup sends sig to process group pgid. A group that is already gone
// is not an error.
func signalGroup(pgid int, sig syscall.Signal) error {
	err := unix.Kill(-pgid, sig)
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("watchdog: signal process group %d: %w", pgid, err)
	}
	return nil
}

// exitOf describes how a process ended.
func exitOf(ps *os.ProcessState) (code int, sig syscall.Signal, core bool) {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return ps.ExitCode(), 0, false
	}
	if ws.Signaled() {
		return -1, ws.Signal(), ws.CoreDump()
	}
	return ws.ExitStatus(), 0, false
}

// signalName returns "SIGSEGV" for syscall.SIGSEGV.
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(sig))
}

// lookPath resolves the command the way a shell would, with errors that say
// what is wrong. The error wraps ErrStart, and exec.ErrNotFound or
// fs.ErrNotExist when there is no such command.
func lookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			if errors.Is(ee.Err, exec.ErrNotFound) {
				return "", fmt.Errorf("%w: %s: command not found: %w", ErrStart, name, ee.Err)
			}
			return "", fmt.Errorf("%w: %s: %w", ErrStart, name, ee.Err)
		}
		return "", fmt.Errorf("%w: %s: %w", ErrStart, name, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrStart, name, err)
	}
	if fi.IsDir() {
		return "", fmt.Errorf("%w: %s: is a directory", ErrStart, name)
	}
	return p, nil
}
