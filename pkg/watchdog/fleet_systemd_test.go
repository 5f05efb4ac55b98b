package watchdog

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/mtev-supervise/mtev-supervise/internal/scripttest"
)

// notifyLateChild declares READY=1 a moment after it started, and ends at
// SIGTERM.
func notifyLateChild() int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	if _, err := daemon.SdNotify(false, "READY=1"); err != nil {
		return 5
	}
	<-term
	return 0
}

// Under systemd, a Fleet without a Primary speaks for the whole set: one
// READY=1 once every service is ready (here: a notify service that
// declares it late, and its dependent), a STATUS= summary, WATCHDOG=1
// pings and one STOPPING=1; its Supervisors say nothing themselves.
func TestFleetSystemd(t *testing.T) {
	sd := newFakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", "")
	dir := t.TempDir()
	fx := fleetFixture{dir: dir, log: filepath.Join(dir, "log")}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	db := ServiceSpec{Config: Config{Name: "db", Command: []string{exe, "-test.run=^$"}, Env: []string{testChildEnv + "=notify-late"},
		StateDir: dir, Notify: true}}
	f, err := NewFleet([]ServiceSpec{db, fx.spec("web", "db")}, FleetOptions{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx) }()
	if !scripttest.Poll(func() bool { return sd.count("READY=1") > 0 }) {
		t.Fatalf("no READY=1 from the fleet: %s", sd.all())
	}
	if st := state(t, f, "web"); st.State != "running" && st.State != "ready" {
		t.Errorf("READY=1 sent while web is %s", st.State)
	}
	if !scripttest.Poll(func() bool { return sd.count("WATCHDOG=1") > 0 }) {
		t.Fatalf("no WATCHDOG=1 from the fleet: %s", sd.all())
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if n := sd.count("READY=1"); n != 1 {
		t.Errorf("READY=1 sent %d times: %s", n, sd.all())
	}
	if n := sd.count("STOPPING=1"); n != 1 {
		t.Errorf("STOPPING=1 sent %d times: %s", n, sd.all())
	}
	if sd.count(`STATUS=2 services: 2 ready`) == 0 {
		t.Errorf("no summary with both services ready: %s", sd.all())
	}
	if n := sd.count(`STATUS=.*pid.*`); n != 0 {
		t.Errorf("a service's own supervisor spoke to systemd: %s", sd.all())
	}
}
