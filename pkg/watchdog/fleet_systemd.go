package watchdog

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Reporting to systemd for a Fleet without a Primary (`mtev-supervise
// up`): the unit is the whole set, so its Supervisors report nothing
// themselves (Config.NoSystemd) and the Fleet speaks for them:
//
//   - READY=1 once no service is waiting for its dependencies or for its
//     child's readiness: every service is ready, or ended (gave up,
//     failed, stopped), so that one broken service cannot hold the unit in
//     "activating" forever;
//   - STATUS= with the count of services in each state, at every change;
//   - WATCHDOG=1 every WATCHDOG_USEC/2, each after the Fleet's lock was
//     taken: a wedged Fleet stops the pings;
//   - STOPPING=1 when Serve begins to stop everything.
//
// A Fleet with a Primary (a linked app and its <managed> sidecars) leaves
// the reporting to the Primary's Supervisor: the unit is the app.
type fleetSystemd struct {
	f    *Fleet
	ping time.Duration
	quit chan struct{}
	wg   sync.WaitGroup

	readySent, stopSent bool
	last                string
}

// startSystemd starts the Fleet's reporter when NOTIFY_SOCKET is set for
// this process and the Fleet has no Primary; it returns nil otherwise.
func (f *Fleet) startSystemd() *fleetSystemd {
	if f.opts.Primary != "" || os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	usec, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		f.notice("", "systemd: %v; no WATCHDOG=1 will be sent", err)
		usec = 0
	}
	sd := &fleetSystemd{f: f, ping: usec / 2, quit: make(chan struct{})}
	sd.wg.Add(1)
	go func() {
		defer sd.wg.Done()
		sd.serve()
	}()
	return sd
}

func (sd *fleetSystemd) serve() {
	var tick <-chan time.Time
	if sd.ping > 0 {
		t := time.NewTicker(sd.ping)
		defer t.Stop()
		tick = t.C
	}
	for {
		sd.f.mu.Lock()
		msg, changed := sd.stateLocked()
		sd.f.mu.Unlock()
		if msg != "" {
			daemon.SdNotify(false, msg)
		}
		select {
		case <-sd.quit:
			return
		case <-changed:
		case <-tick:
			sd.f.mu.Lock() // the proof of health: the Fleet's lock is free
			msg, _ := sd.stateLocked()
			sd.f.mu.Unlock()
			daemon.SdNotify(false, strings.TrimPrefix(msg+"\nWATCHDOG=1", "\n"))
		}
	}
}

// stateLocked returns what systemd was not told yet, and the channel that
// says the next change. Called with f.mu held.
func (sd *fleetSystemd) stateLocked() (string, chan struct{}) {
	f := sd.f
	counts := map[string]int{}
	settled := true
	for _, n := range f.order {
		s := f.svcs[n]
		st := s.stateLocked()
		counts[st]++
		if st == "waiting" || st == "running" || st == "backoff" {
			settled = false
		}
	}
	var lines []string
	if settled && !sd.readySent {
		sd.readySent = true
		lines = append(lines, "READY=1")
	}
	if f.closing && !sd.stopSent {
		sd.stopSent = true
		lines = append(lines, "STOPPING=1")
	}
	var parts []string
	for _, st := range []string{"ready", "running", "waiting", "backoff", "stopping", "stopped", "exited", "gave-up", "failed"} {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	status := fmt.Sprintf("%d services: %s", len(f.order), strings.Join(parts, ", "))
	if status != sd.last {
		sd.last = status
		lines = append(lines, "STATUS="+status)
	}
	return strings.Join(lines, "\n"), f.changed
}

// close ends the reporter and tells systemd the Fleet stopped.
func (sd *fleetSystemd) close() {
	if sd == nil {
		return
	}
	close(sd.quit)
	sd.wg.Wait()
	sd.f.mu.Lock()
	msg, _ := sd.stateLocked()
	sd.f.mu.Unlock()
	if !sd.stopSent {
		msg = strings.TrimPrefix(msg+"\nSTOPPING=1", "\n")
	}
	daemon.SdNotify(false, msg)
}
