package watchdog

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// exitedPID returns the pid of a process that ran and is gone.
func exitedPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// startSleep starts a process that lives until the test ends.
func startSleep(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	if len(args) > 0 {
		cmd = exec.Command(args[0], args[1:]...)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// Who may speak, under each access mode: the child and its descendants,
// a live stranger, a sender that exited (the stranger that sends one
// WATCHDOG=1 and exits), and systemd-notify --pid on behalf of the child.
func TestNotifyAccess(t *testing.T) {
	child := startSleep(t, "sh", "-c", "sleep 1000 & wait")
	var grandchild int
	waitFor(t, "the grandchild", func() bool {
		d := descendants(child.Process.Pid)
		if len(d) == 0 {
			return false
		}
		grandchild = d[0]
		return true
	})
	stranger := startSleep(t).Process.Pid
	gone := exitedPID(t)
	root := child.Process.Pid
	ping := []byte("WATCHDOG=1")
	onBehalf := []byte(fmt.Sprintf("MAINPID=%d\nWATCHDOG=1", root))
	forgedStranger := []byte(fmt.Sprintf("MAINPID=%d\nWATCHDOG=1", stranger))
	cases := []struct {
		access  NotifyAccess
		pid     int
		payload []byte
		ok      bool
	}{
		{NotifyMain, root, ping, true},
		{NotifyMain, grandchild, ping, true},
		{NotifyMain, stranger, ping, false},
		{NotifyMain, gone, ping, false},
		{NotifyMain, gone, onBehalf, true},
		{NotifyMain, gone, forgedStranger, false},
		{NotifyMain, 0, ping, false},
		{NotifyExec, gone, ping, true},
		{NotifyExec, stranger, ping, false},
		{NotifyAll, stranger, ping, true},
		{NotifyNone, root, ping, false},
	}
	for _, c := range cases {
		n := &notifySocket{access: c.access, strangers: map[int]time.Time{}}
		n.root.Store(int64(root))
		n.main.Store(int64(root))
		why := n.refuse(c.pid, root, c.payload)
		if (why == "") != c.ok {
			t.Errorf("access %s, sender %d, %q: refused=%q, want accepted=%v", c.access, c.pid, c.payload, why, c.ok)
		}
	}
}

// A flood of refused datagrams gives one warning line per sender per
// interval, not one per datagram, and the child is not kept alive by it.
func TestNotifyFloodWarnsOnce(t *testing.T) {
	s, ev := newTestSupervisor(t, Config{
		Name:           "flooded",
		Command:        []string{"sleep", "1000"},
		Notify:         true,
		StartupTimeout: time.Second,
		Restart:        RestartNever,
	})
	begin := time.Now()
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	path := filepath.Join(s.cfg.StateDir, "run", "flooded.notify")
	waitFor(t, "the child", func() bool { st, err := s.Status(); return err == nil && st.PID != 0 })
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for range 2000 {
		conn.Write([]byte("READY=1"))
	}
	if err := <-done; err == nil {
		t.Fatal("Serve: want the child killed for its start-up stall")
	}
	warnings := ev.count(func(e Event) bool {
		w, ok := e.(Warning)
		return ok && strings.Contains(w.Err.Error(), "refused")
	})
	// One per interval that passed, at most.
	if limit := 1 + int(time.Since(begin)/refusalInterval); warnings < 1 || warnings > limit {
		t.Fatalf("%d refusal warnings for 2000 datagrams, want 1 to %d", warnings, limit)
	}
}

func TestRefusalsRateLimit(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRefusals(10*time.Second, func() time.Time { return now })
	if ok, _ := r.allow(7); !ok {
		t.Fatal("first refusal of a sender not logged")
	}
	for range 5 {
		if ok, _ := r.allow(7); ok {
			t.Fatal("a repeat within the interval was logged")
		}
	}
	if ok, _ := r.allow(8); !ok {
		t.Fatal("another sender's first refusal not logged")
	}
	now = now.Add(10 * time.Second)
	ok, n := r.allow(7)
	if !ok || n != 5 {
		t.Fatalf("after the interval: logged=%v suppressed=%d, want true 5", ok, n)
	}
	// Many senders share one entry past the bound.
	for pid := 100; pid < 100+2*maxSenders; pid++ {
		r.allow(pid)
	}
	if len(r.per) > maxSenders+1 {
		t.Fatalf("%d entries kept, want at most %d", len(r.per), maxSenders+1)
	}
}

// A journal whose tail was torn is repaired when the supervisor opens it,
// and the repair is logged.
func TestJournalRepairLogged(t *testing.T) {
	dir := t.TempDir()
	for range 3 {
		s, _ := newTestSupervisor(t, Config{StateDir: dir, Command: []string{"true"}, Restart: RestartNever})
		if err := s.Serve(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	seg := filepath.Join(JournalDir(dir), "00000000000000000001.seg")
	fi, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(seg, fi.Size()-5); err != nil {
		t.Fatal(err)
	}
	s, ev := newTestSupervisor(t, Config{StateDir: dir, Command: []string{"true"}, Restart: RestartNever})
	if err := s.Serve(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := ev.count(func(e Event) bool {
		w, ok := e.(Warning)
		return ok && strings.Contains(w.Err.Error(), "journal repaired") && strings.Contains(w.Err.Error(), "records 3 to 3 are lost")
	}); n != 1 {
		t.Fatalf("%d journal repair warnings, want 1", n)
	}
}

// A file descriptor passed with a notify datagram (sd_notify_barrier,
// systemd-notify --ready) is never kept: the sender waiting for its pipe to
// close goes on.
func TestNotifyPassedFDNotKept(t *testing.T) {
	s, _ := newTestSupervisor(t, Config{Name: "fds", Command: []string{"sleep", "1000"}, Notify: true})
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	defer func() { s.Stop(); <-done }()
	waitFor(t, "the child", func() bool { st, err := s.Status(); return err == nil && st.PID != 0 })
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	to := &unix.SockaddrUnix{Name: filepath.Join(s.cfg.StateDir, "run", "fds.notify")}
	if err := unix.Sendmsg(fd, []byte("BARRIER=1"), unix.UnixRights(int(w.Fd())), to, 0); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// EOF only once every copy of the write end is closed.
	got := make(chan error, 1)
	go func() { _, err := r.Read(make([]byte, 1)); got <- err }()
	select {
	case err := <-got:
		if err != io.EOF {
			t.Fatalf("read: %v, want EOF", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the supervisor kept the passed file descriptor")
	}
}
