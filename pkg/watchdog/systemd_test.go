package watchdog

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSystemd is a notify socket as systemd holds one: a unixgram socket
// whose datagrams the test reads.
type fakeSystemd struct {
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
	done chan struct{}
}

func newFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSystemd{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(f.done)
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
	t.Cleanup(func() { conn.Close(); <-f.done })
	t.Setenv("NOTIFY_SOCKET", path)
	return f
}

// count returns how many lines of the datagrams match the regular
// expression pattern, anchored at both ends.
func (f *fakeSystemd) count(pattern string) int {
	re := regexp.MustCompile("^(?:" + pattern + ")$")
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.msgs {
		for _, l := range strings.Split(m, "\n") {
			if re.MatchString(l) {
				n++
			}
		}
	}
	return n
}

func (f *fakeSystemd) all() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("%d datagrams: %q", len(f.msgs), f.msgs)
}

// The supervisor of a child without a readiness signal is ready once it
// started it; it pings systemd's watchdog while its loop answers, and
// stops pinging while the loop is wedged (here: by an Events hook that
// blocks, which it must never do).
func TestSystemdWatchdogFollowsTheLoop(t *testing.T) {
	sd := newFakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "40000") // a ping every 20ms
	t.Setenv("WATCHDOG_PID", "")
	wedged := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	s, err := New(Config{Command: []string{"sleep", "1000"}, StateDir: t.TempDir(), StopTimeout: 5 * time.Second},
		Options{Events: func(e Event) {
			if _, ok := e.(Stopping); ok {
				once.Do(func() {
					close(wedged)
					<-release
				})
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	waitFor(t, "READY=1", func() bool { return sd.count("READY=1") == 1 })
	waitFor(t, "pings", func() bool { return sd.count("WATCHDOG=1") >= 3 })
	if sd.count(`STATUS=sleep: pid \d+ running, 0 restarts`) == 0 {
		t.Errorf("no status with the child's pid:\n%s", sd.all())
	}

	restarted := make(chan error, 1)
	go func() { restarted <- s.Restart() }()
	<-wedged
	// At most one ping was on its way when the loop wedged; over ten
	// intervals no other may come. (Waiting shows an absence: a slow
	// machine only sends fewer.)
	before := sd.count("WATCHDOG=1")
	time.Sleep(200 * time.Millisecond)
	if n := sd.count("WATCHDOG=1"); n > before+1 {
		t.Errorf("%d pings while the loop was wedged", n-before)
	}
	close(release)
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	after := sd.count("WATCHDOG=1")
	waitFor(t, "pings after the wedge", func() bool { return sd.count("WATCHDOG=1") >= after+2 })
	waitFor(t, "the restart in the status", func() bool { return sd.count(`STATUS=sleep: pid \d+ running, 1 restart`) >= 1 })

	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	// Sent before Serve returned; read by the fake socket's reader since.
	waitFor(t, "the final status", func() bool { return sd.count(`STATUS=stopped`) == 1 })
	if sd.count("STOPPING=1") != 1 || sd.count("READY=1") != 1 {
		t.Errorf("want one READY=1 and one STOPPING=1:\n%s", sd.all())
	}
}

// NoSystemd keeps a supervisor quiet, and no NOTIFY_SOCKET is no report.
func TestSystemdOff(t *testing.T) {
	sd := newFakeSystemd(t)
	s, err := New(Config{Command: []string{"true"}, StateDir: t.TempDir(), Restart: RestartNever, NoSystemd: true}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sd.count(".*") != 0 {
		t.Errorf("NoSystemd, yet systemd was told: %s", sd.all())
	}
}

// A WATCHDOG_USEC systemd would never write is a warning: no pings, the
// rest of the protocol as usual.
func TestSystemdBadWatchdogUsec(t *testing.T) {
	sd := newFakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "soon")
	s, ev := newTestSupervisor(t, Config{Command: []string{"true"}, Restart: RestartNever})
	if err := s.Serve(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the final status", func() bool { return sd.count(`STATUS=stopped`) == 1 })
	if sd.count(`READY=1`) != 1 || sd.count(`STOPPING=1`) != 1 || sd.count(`WATCHDOG=1`) != 0 {
		t.Errorf("want READY=1 and STOPPING=1, no ping: %s", sd.all())
	}
	if ev.count(func(e Event) bool {
		w, ok := e.(Warning)
		return ok && strings.Contains(w.Err.Error(), "WATCHDOG_USEC")
	}) != 1 {
		t.Errorf("no warning about WATCHDOG_USEC")
	}
}
