// Package reap keeps a supervisor's orphan reaper away from the processes
// this program started itself.
//
// A supervisor is a child subreaper: orphans of its child's tree become
// its children and must be reaped (Orphans). Processes this program
// started itself are waited for by their owners (exec.Cmd.Wait); the reaper
// must never take their exit status. So every start goes through Start,
// which registers the pid under the same lock the reaper takes to check a
// candidate, and the owner calls Release after Wait.
//
// Orphans finds candidates in /proc rather than waiting for "any child",
// so it never consumes the ptrace stops of a child being captured. Its lock
// is held only to check and reap a candidate, never for the scan, so a
// start is never delayed by it.
package reap

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

var (
	mu    sync.Mutex
	owned = map[int]bool{}
)

// Start starts cmd and marks its pid as owned by the caller.
func Start(cmd *exec.Cmd) error {
	mu.Lock()
	defer mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	owned[cmd.Process.Pid] = true
	return nil
}

// Release forgets a pid registered by Start, once its owner waited for it.
func Release(pid int) {
	mu.Lock()
	delete(owned, pid)
	mu.Unlock()
}

// Orphans reaps every zombie child that nobody in this process owns and
// returns how many it reaped.
func Orphans() int {
	n := 0
	self := os.Getpid()
	for _, pid := range children() {
		st, err := ReadStat(pid)
		if err != nil || st.State != 'Z' || st.PPid != self {
			continue
		}
		mu.Lock()
		if !owned[pid] {
			var ws unix.WaitStatus
			if p, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && p == pid {
				n++
			}
		}
		mu.Unlock()
	}
	return n
}

// children lists the children of this process's main thread, from
// /proc/self/task/<pid>/children: orphans re-parented to a subreaper become
// children of its first live thread, the main thread, which Go never ends.
// (Children this program forks itself belong to whichever thread forked
// them, and are waited for by their owners.) Where the kernel lacks that
// file, every pid in /proc is a candidate.
func children() []int {
	var pids []int
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/children")
	if err == nil {
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Stat is what a supervisor reads of /proc/PID/stat.
type Stat struct {
	State byte // 'R', 'S', 'Z', ...
	PPid  int
	Pgrp  int
}

// ReadStat reads /proc/pid/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	// The command name is in parentheses and may itself contain them.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return Stat{}, fmt.Errorf("reap: malformed /proc/%d/stat", pid)
	}
	f := bytes.Fields(b[i+2:])
	if len(f) < 3 {
		return Stat{}, fmt.Errorf("reap: malformed /proc/%d/stat", pid)
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return Stat{}, fmt.Errorf("reap: /proc/%d/stat: %w", pid, err)
	}
	pgrp, _ := strconv.Atoi(string(f[2]))
	return Stat{State: f[0][0], PPid: ppid, Pgrp: pgrp}, nil
}
