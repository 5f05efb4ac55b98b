package watchdog

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/internal/reap"
)

// Containment: no process of a child's tree outlives the child's end (a
// graceful stop, a give-up, a stall kill) or the supervisor itself, even
// processes that left the child's process group or session.
//
// Every child is started with treeEnv set to a token unique to the
// Supervisor; every process the child starts inherits it, setsid or not,
// unless it replaces its whole environment. Two mechanisms use the mark:
//
//   - while the supervisor lives, killTree walks its descendants in /proc
//     (orphans of the tree are re-parented to it, a subreaper) and kills
//     every marked one; this runs when a child has ended, and at the stop
//     timeout;
//   - the guard, a small process started from this executable once per
//     Serve, holds the read end of a pipe whose write end only the
//     supervisor holds. When the supervisor dies, even by SIGKILL, the pipe
//     reads EOF and the guard kills every marked process in /proc (by then
//     re-parented to init or an outer subreaper), then exits.
//
// ContainMode names the mode for `status`.
const (
	treeEnv  = "MTEV_TREE"
	guardEnv = "MTEV_GUARD"

	// ContainMode is the containment mode in force, shown by `status`:
	// the /proc walk while the supervisor lives, the guard process when it
	// dies.
	ContainMode = "walk+guard"
)

func init() {
	if tok := os.Getenv(guardEnv); tok != "" {
		runGuard(tok)
	}
}

// newTreeToken returns a token that marks one Supervisor's processes.
func newTreeToken() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		// Never fails on Linux; a pid and a time still tell supervisors apart.
		return fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}

// guard is the process that outlives a SIGKILLed supervisor by a moment.
type guard struct {
	cmd *exec.Cmd
	w   *os.File // the supervisor's end of the pipe
}

// startGuard starts the guard for token on the spawner's thread.
func startGuard(sp *spawner, token string) (*guard, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("watchdog: guard: pipe: %w", err)
	}
	cmd := &exec.Cmd{
		Path:   selfExe(),
		Args:   []string{"mtev-supervise-guard"},
		Env:    []string{guardEnv + "=" + token},
		Stdin:  r,
		Stderr: os.Stderr,
		// Its own group: a ^C at the terminal reaches the supervisor,
		// which stops gracefully, and never the guard.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if err := sp.start(cmd); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("watchdog: guard: %w", err)
	}
	r.Close()
	return &guard{cmd: cmd, w: w}, nil
}

// close ends the guard: it sweeps what is left of the tree and exits.
func (g *guard) close() {
	g.w.Close()
	g.cmd.Wait()
	reap.Release(g.cmd.Process.Pid)
}

// runGuard is the guard's whole life: wait for the supervisor to go, kill
// what it left behind, exit.
func runGuard(token string) {
	os.Unsetenv(guardEnv)
	signal := make([]byte, 1)
	for {
		// Only EOF (the supervisor's end closed) ends the wait.
		if _, err := os.Stdin.Read(signal); err == io.EOF {
			break
		} else if err != nil && err != syscall.EINTR {
			break
		}
	}
	killMarked(allPIDs, token)
	os.Exit(0)
}

// killTree kills every process that carries token among the orphans this
// process adopted as a subreaper (and their descendants) and the
// descendants of roots (a child still alive), until none is left, and
// returns how many it signalled. When the child's tree is empty, as it
// mostly is, this costs one read of the main thread's children file.
func killTree(token string, roots ...int) int {
	return killMarked(func() []int { return treeCandidates(roots) }, token)
}

// treeCandidates lists the processes killTree looks at: orphans
// re-parented to this process (children of its main thread: processes
// this program starts itself are forked by other threads) with their
// descendants, and roots with theirs.
func treeCandidates(roots []int) []int {
	self := os.Getpid()
	var out []int
	b, err := os.ReadFile("/proc/" + strconv.Itoa(self) + "/task/" + strconv.Itoa(self) + "/children")
	if err != nil {
		// No children files: look at every descendant.
		return descendantsByStat(self)
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
			out = append(out, descendants(pid)...)
		}
	}
	for _, r := range roots {
		out = append(out, r)
		out = append(out, descendants(r)...)
	}
	return out
}

// signalTree sends sig to every marked descendant that is not in process
// group pgid (the group is signalled as a whole by the caller).
func signalTree(token string, pgid int, sig syscall.Signal) {
	for _, pid := range treeCandidates([]int{pgid}) {
		st, err := reap.ReadStat(pid)
		if err != nil || st.Pgrp == pgid || st.State == 'Z' {
			continue
		}
		if marked(pid, token) {
			unix.Kill(pid, sig)
		}
	}
}

// killMarked SIGKILLs every live process from candidates() whose
// environment carries token; it repeats while a pass finds a process not
// signalled before (one forked during the pass), at most 64 passes.
func killMarked(candidates func() []int, token string) int {
	self := os.Getpid()
	killed := map[int]bool{}
	for range 64 {
		found := false
		for _, pid := range candidates() {
			if pid == self || killed[pid] {
				continue
			}
			if st, err := reap.ReadStat(pid); err != nil || st.State == 'Z' {
				continue
			}
			if !marked(pid, token) {
				continue
			}
			unix.Kill(pid, syscall.SIGKILL)
			killed[pid] = true
			found = true
		}
		if !found {
			break
		}
	}
	return len(killed)
}

// marked reports whether pid's environment holds treeEnv=token.
func marked(pid int, token string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	want := treeEnv + "=" + token
	for len(b) > 0 {
		var kv []byte
		if i := bytes.IndexByte(b, 0); i >= 0 {
			kv, b = b[:i], b[i+1:]
		} else {
			kv, b = b, nil
		}
		if string(kv) == want {
			return true
		}
	}
	return false
}

// allPIDs lists every process in /proc.
func allPIDs() []int {
	entries, _ := os.ReadDir("/proc")
	pids := make([]int, 0, len(entries))
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// descendants lists the processes below root, from the children files of
// every thread (/proc/PID/task/TID/children). Without them (a kernel
// without CONFIG_PROC_CHILDREN), it builds the tree from every process's
// parent.
func descendants(root int) []int {
	if _, err := os.Stat("/proc/" + strconv.Itoa(root) + "/task/" + strconv.Itoa(root) + "/children"); err != nil {
		return descendantsByStat(root)
	}
	var out []int
	seen := map[int]bool{root: true}
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		dir := "/proc/" + strconv.Itoa(pid) + "/task"
		tasks, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, t := range tasks {
			b, err := os.ReadFile(dir + "/" + t.Name() + "/children")
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				c, err := strconv.Atoi(f)
				if err != nil || seen[c] {
					continue
				}
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

func descendantsByStat(root int) []int {
	kids := map[int][]int{}
	for _, pid := range allPIDs() {
		if st, err := reap.ReadStat(pid); err == nil {
			kids[st.PPid] = append(kids[st.PPid], pid)
		}
	}
	var out []int
	queue := []int{root}
	seen := map[int]bool{root: true}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range kids[pid] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}
