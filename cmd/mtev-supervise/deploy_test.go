package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
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
while [ -e /proc/$orphan ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done
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
	if out, err := exec.Command("unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("unshare --pid --fork --kill-child --mount-proc is not permitted or not known here (it needs root or user namespaces, util-linux 2.32): %v: %s", err, out)
	}
	bin := commandDir(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "child.sh"), []byte(pid1Child), 0o644); err != nil {
		t.Fatal(err)
	}
	// --kill-child: should the test end early, killing unshare kills the
	// namespace's PID 1, and with it everything in the namespace.
	cmd := exec.Command("unshare", "--pid", "--fork", "--kill-child", "--mount-proc",
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

// systemdChild speaks the notify protocol to the supervisor. The first
// child waits for the test before its READY=1, pings three times and hangs
// (a stall: the supervisor kills it); the second is ready at once and
// keeps pinging.
const systemdChild = `
echo "$NOTIFY_SOCKET" > notify.env
n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
echo started > started.$n
if [ $n = 1 ]; then while [ ! -e go ]; do sleep 0.02; done; fi
mtev-notify MAINPID=$$ READY=1 "STATUS=serving start $n"
if [ $n = 1 ]; then
	for i in 1 2 3; do mtev-notify MAINPID=$$ WATCHDOG=1; sleep 0.05; done
	while :; do sleep 1; done
fi
while :; do mtev-notify MAINPID=$$ WATCHDOG=1; sleep 0.05; done
`

// fakeSystemd is the notify socket systemd would hold for the unit.
type fakeSystemd struct {
	mu   sync.Mutex
	msgs []string
}

func listenSystemd(t *testing.T, path string) *fakeSystemd {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSystemd{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.msgs = append(f.msgs, string(buf[:n]))
			f.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return f
}

// lines returns every line received, in order.
func (f *fakeSystemd) lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.msgs {
		out = append(out, strings.Split(m, "\n")...)
	}
	return out
}

// index returns the position of the first line at or after from that
// matches pattern (anchored), or -1.
func (f *fakeSystemd) index(pattern string, from int) int {
	re := regexp.MustCompile("^(?:" + pattern + ")$")
	for i, l := range f.lines() {
		if i >= from && re.MatchString(l) {
			return i
		}
	}
	return -1
}

func (f *fakeSystemd) count(pattern string, from int) int {
	re := regexp.MustCompile("^(?:" + pattern + ")$")
	n := 0
	for i, l := range f.lines() {
		if i >= from && re.MatchString(l) {
			n++
		}
	}
	return n
}

// TestSystemdPassthrough: `run` under a Type=notify unit (NOTIFY_SOCKET
// and WATCHDOG_USEC set for the supervisor) tells systemd READY=1 only
// once its notify child is ready, STATUS= with the child's state, its own
// status text and the restarts, keeps pinging WATCHDOG=1 through the
// child's stall and restart, and sends STOPPING=1 at the stop.
func TestSystemdPassthrough(t *testing.T) {
	bin := commandDir(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "systemd.sock")
	sd := listenSystemd(t, sock)
	if err := os.WriteFile(filepath.Join(dir, "child.sh"), []byte(systemdChild), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "mtev-supervise"), "run", "--name", "sd", "--notify", "--watchdog", "300ms",
		"--backoff-min", "10ms", "--", "sh", "child.sh")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MTEV_STATE_DIR="+filepath.Join(dir, "state"), "PATH="+bin+":"+os.Getenv("PATH"),
		"NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=100000")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	wait := func(what, pattern string, from int) int {
		t.Helper()
		i := -1
		if !scripttest.Poll(func() bool { i = sd.index(pattern, from); return i >= 0 }) {
			t.Fatalf("systemd was never told %s (%s); it got:\n%s\nstderr:\n%s", what, pattern, strings.Join(sd.lines(), "\n"), &stderr)
		}
		return i
	}

	// Started, not ready: the supervisor says so, pings, and holds READY=1.
	waitFile(t, filepath.Join(dir, "started.1"), &stderr)
	wait("the child runs", `STATUS=sd: pid \d+ running, 0 restarts`, 0)
	first := sd.index(`WATCHDOG=1`, 0)
	wait("a second ping", `WATCHDOG=1`, first+1)
	if n := sd.count(`READY=1`, 0); n != 0 {
		t.Fatalf("READY=1 before the child was ready:\n%s", strings.Join(sd.lines(), "\n"))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "notify.env")); strings.TrimSpace(string(b)) == sock || len(b) < 2 {
		t.Errorf("the child's NOTIFY_SOCKET is %q: want the supervisor's own, never systemd's", b)
	}

	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ready := wait("READY=1", `READY=1`, 0)
	wait("the child's own status", `STATUS=sd: pid \d+ ready, 0 restarts; serving start 1`, 0)

	// The child stops pinging: a stall, then a restart. The supervisor's
	// own pings go on meanwhile: the supervisor is healthy.
	stalled := wait("the stall", `STATUS=sd: pid \d+ stalled \(notify-watchdog\): being killed, 0 restarts; serving start 1`, ready)
	ping := wait("a ping after the stall", `WATCHDOG=1`, stalled)
	wait("another ping", `WATCHDOG=1`, ping+1)
	wait("the restarted child", `STATUS=sd: pid \d+ ready, 1 restart; serving start 2`, stalled)
	if n := sd.count(`READY=1`, 0); n != 1 {
		t.Errorf("READY=1 sent %d times, want once", n)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("supervisor: %v\n%s", err, &stderr)
	}
	stop := wait("STOPPING=1", `STOPPING=1`, 0)
	wait("the end", `STATUS=stopped`, stop)
	if n := sd.count(`STOPPING=1`, 0); n != 1 {
		t.Errorf("STOPPING=1 sent %d times, want once", n)
	}
}
