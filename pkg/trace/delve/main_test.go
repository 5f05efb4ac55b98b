package delve

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// scenarioDir holds the scenario programs, built once per test binary.
var scenarioDir string

// scenarios are the programs of testdata/scenarios built for these tests.
var scenarios = []string{
	"mutex-deadlock", "chan-block", "syscall-block", "spin-nopreempt",
	"sleeper", "goroutines", "panic", "exit3", "fatal-concurrent-map", "nil-deref",
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "delve-scenarios-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	scenarioDir = dir
	if err := buildScenarios(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// buildScenarios builds every scenario into dir, plus "sleeper-stripped"
// (built with -ldflags=-s -w).
func buildScenarios(dir string) error {
	root := filepath.Join("..", "..", "..", "testdata", "scenarios")
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	for _, s := range scenarios {
		args = append(args, "./"+filepath.Join(root, s))
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("build scenarios: %v\n%s", err, out)
	}
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", filepath.Join(dir, "sleeper-stripped"), "./"+filepath.Join(root, "sleeper"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build stripped sleeper: %v\n%s", err, out)
	}
	return nil
}

func scenarioPath(name string) string { return filepath.Join(scenarioDir, name) }

// child is a started scenario. Its exit is watched through a pidfd, and
// Wait is only called once the pidfd is readable, as the supervisor does:
// a pending Wait would swallow the ptrace stop of an attach.
type child struct {
	t      testing.TB
	cmd    *exec.Cmd
	pidfd  int
	stdout *os.File
	done   bool
}

// startChild starts a program with the given environment additions and
// waits until it prints "ready". The child is killed at cleanup.
func startChild(t testing.TB, path string, env []string, args ...string) *child {
	t.Helper()
	c := startChildNoReady(t, path, env, nil, args...)
	c.waitReady(30 * time.Second)
	return c
}

func startChildNoReady(t testing.TB, path string, env []string, setup func(*exec.Cmd), args ...string) *child {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	pidfd := -1
	cmd.SysProcAttr = &syscall.SysProcAttr{PidFD: &pidfd}
	if setup != nil {
		setup(cmd)
	}
	c := &child{t: t, cmd: cmd}
	if cmd.Stdout == nil {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = pw
		t.Cleanup(func() { pr.Close() })
		defer pw.Close()
		c.stdout = pr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	c.pidfd = pidfd
	t.Cleanup(c.kill)
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// waitReady reads the child's stdout until the line "ready".
func (c *child) waitReady(timeout time.Duration) {
	c.t.Helper()
	if err := c.stdout.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		c.t.Fatal(err)
	}
	line, err := bufio.NewReader(c.stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		c.t.Fatalf("%s: waiting for ready: got %q, %v", c.cmd.Path, line, err)
	}
}

// waitSpinning waits until the child has used some CPU time since this
// call (its utime+stime in /proc grew by several clock ticks), which only a
// spinning child does.
func (c *child) waitSpinning(timeout time.Duration) {
	c.t.Helper()
	start := c.cpuTicks()
	deadline := time.Now().Add(timeout)
	for c.cpuTicks() < start+3 {
		if time.Now().After(deadline) {
			c.t.Fatalf("child %d is not spinning", c.pid())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cpuTicks returns utime+stime of the child from /proc/<pid>/stat.
func (c *child) cpuTicks() int64 {
	c.t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.pid()))
	if err != nil {
		c.t.Fatal(err)
	}
	i := strings.LastIndexByte(string(data), ')')
	fields := strings.Fields(string(data[i+1:]))
	// Fields after the command: state is [0], utime [11], stime [12].
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			c.t.Fatal(err)
		}
		ticks += n
	}
	return ticks
}

// exited reports whether the child has exited (its pidfd is readable),
// waiting at most timeout.
func (c *child) exited(timeout time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(c.pidfd), Events: unix.POLLIN}}
	ms := int(timeout / time.Millisecond)
	for {
		n, err := unix.Poll(fds, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n > 0
	}
}

// assertRunning fails unless the child is alive and not stopped.
func (c *child) assertRunning() {
	c.t.Helper()
	if c.exited(0) {
		c.t.Fatalf("child %d exited", c.pid())
	}
	st, err := processState(c.pid())
	if err != nil {
		c.t.Fatal(err)
	}
	if st == 't' || st == 'T' {
		c.t.Fatalf("child %d is stopped (state %c)", c.pid(), st)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.pid()))
	if err != nil {
		c.t.Fatal(err)
	}
	if !strings.Contains(string(status), "TracerPid:\t0\n") {
		c.t.Fatalf("child %d is still traced", c.pid())
	}
}

// waitExit waits for the child to exit and reaps it.
func (c *child) waitExit(timeout time.Duration) *os.ProcessState {
	c.t.Helper()
	if !c.exited(timeout) {
		c.t.Fatalf("child %d did not exit within %s", c.pid(), timeout)
	}
	return c.reap()
}

func (c *child) reap() *os.ProcessState {
	if c.done {
		return c.cmd.ProcessState
	}
	c.done = true
	c.cmd.Wait()
	unix.Close(c.pidfd)
	return c.cmd.ProcessState
}

// kill sends SIGKILL and reaps the child.
func (c *child) kill() {
	if c.done {
		return
	}
	c.cmd.Process.Kill()
	if !c.exited(30 * time.Second) {
		c.t.Errorf("child %d did not die", c.pid())
		return
	}
	c.reap()
}
