package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/internal/scripttest"
)

// commandDir returns a directory holding this test binary under the names
// of the programs it can be (see TestMain): mtev-supervise, mtev-notify.
func commandDir(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"mtev-supervise", "mtev-notify"} {
		if err := os.Symlink(exe, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// waitFile waits for file to hold a whole line and returns its content.
func waitFile(t *testing.T, file string, stderr *strings.Builder) string {
	t.Helper()
	var b []byte
	if !scripttest.Poll(func() bool {
		var err error
		b, err = os.ReadFile(file)
		return err == nil && len(b) > 0 && b[len(b)-1] == '\n'
	}) {
		t.Fatalf("%s never written; supervisor's stderr:\n%s", filepath.Base(file), stderr)
	}
	return string(b)
}

// pid1Child runs in the new PID namespace under the supervisor (PID 1).
// It leaves an orphan, which the kernel hands to PID 1 and which becomes
// a zombie when it ends, reports whether it was reaped, then asks PID 1
// for a signal (USR2, which reaches the child in every mode) and waits for
// the test's (WINCH, which only an init forwards).
const pid1Child = `
sh -c 'sleep 1 & echo $! > orphan.pid'
orphan=$(cat orphan.pid)
echo "ppid=$(sed 's/.*) //' /proc/$orphan/stat | cut -d' ' -f2)" > orphan.tmp
i=0
while [ -e /proc/$orphan ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
if [ -e /proc/$orphan ]; then echo "left: $(cat /proc/$orphan/stat)" >> orphan.tmp; else echo reaped >> orphan.tmp; fi
mv orphan.tmp orphan.log
trap 'echo USR2 >> signals' USR2
trap 'echo WINCH >> signals' WINCH
kill -USR2 1
echo ready > ready
while :; do sleep 0.05; done
`

// TestInitAsPID1: the supervisor as PID 1 of a new PID namespace (as in a
// container, with no --init: it is automatic) reaps an orphan zombie of
// its child's tree, forwards a signal sent to PID 1 from outside the
// namespace and one sent from inside it, and ends with the child's
// status after a stop.
func TestInitAsPID1(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare(1): cannot make a PID namespace")
	}
	if out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("unshare --pid --fork --mount-proc is not permitted here (it needs root or user namespaces): %v: %s", err, out)
	}
	bin := commandDir(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "child.sh"), []byte(pid1Child), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc",
		filepath.Join(bin, "mtev-supervise"), "run", "--name", "pid1", "--", "sh", "child.sh")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MTEV_STATE_DIR="+filepath.Join(dir, "state"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// The supervisor is unshare's child: PID 1 inside, this pid outside.
	var sup int
	if !scripttest.Poll(func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/" + strconv.Itoa(cmd.Process.Pid) + "/children")
		if err != nil {
			return false
		}
		f := strings.Fields(string(b))
		if len(f) != 1 {
			return false
		}
		sup, _ = strconv.Atoi(f[0])
		return sup > 0
	}) {
		t.Fatalf("unshare started no supervisor; stderr:\n%s", &stderr)
	}

	log := waitFile(t, filepath.Join(dir, "orphan.log"), &stderr)
	if log != "ppid=1\nreaped\n" {
		t.Errorf("the orphan: %q, want adopted by PID 1 and reaped", log)
	}
	waitFile(t, filepath.Join(dir, "ready"), &stderr)
	if err := syscall.Kill(sup, syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	if !scripttest.Poll(func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "signals"))
		return strings.Contains(string(b), "USR2\n") && strings.Contains(string(b), "WINCH\n")
	}) {
		b, _ := os.ReadFile(filepath.Join(dir, "signals"))
		t.Fatalf("the child got %q, want USR2 (from inside) and WINCH (from outside); stderr:\n%s", b, &stderr)
	}

	// docker stop: TERM to PID 1. The child dies of it; so the status is
	// 128+15, through unshare.
	if err := syscall.Kill(sup, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit: %v, want status 143; stderr:\n%s", err, &stderr)
	}
}
