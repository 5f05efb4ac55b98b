package watchdog

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// Reporting to systemd. When the supervisor itself runs under systemd
// (NOTIFY_SOCKET in its own environment: a Type=notify unit), it speaks
// the notify protocol for the service as a whole:
//
//   - READY=1 once, when the first child is ready: its READY=1 when it
//     speaks the notify protocol (Config.Notify), else as soon as it
//     started, since there is nothing else to wait for;
//   - STATUS= with the child's state, pid and restart count, at every
//     change (started, ready, its own STATUS= text, stalled, ended,
//     restart scheduled, gave up, stopping);
//   - WATCHDOG=1 every WATCHDOG_USEC/2 (when systemd set WATCHDOG_USEC for
//     this pid), each one only after the supervisor's loop answered a
//     status request: systemd's watchdog watches the supervisor. A child
//     that stalls or crash-loops is the supervisor's to handle (capture,
//     restart, give up with status 3), and it keeps pinging meanwhile:
//     were it to stop, systemd would kill the supervisor in the middle of
//     a capture and lose the record. A wedged loop stops the pings;
//   - STOPPING=1 when the supervisor begins to stop (a stop request, TERM,
//     a limit reached), or at the latest when Serve returns.
//
// NOTIFY_SOCKET and the WATCHDOG_* variables are never passed on to the
// child (see supervisorEnv); a child that speaks the protocol talks to
// the supervisor's own socket (Config.Notify).
//
// One goroutine sends, owned by Serve; observe, stopping and close may
// be called from any goroutine and never block on the socket.
type systemd struct {
	s     *Supervisor
	ping  time.Duration // WATCHDOG=1 interval; 0: systemd watches nothing
	wake  chan struct{}
	quit  chan struct{}
	wg    sync.WaitGroup
	waitR bool // the child has a readiness signal of its own

	mu         sync.Mutex
	readySent  bool
	ready      bool   // the child is ready (or started, without a readiness signal)
	stopping   bool   // the supervisor is stopping
	stopSent   bool   // STOPPING=1 was sent
	stalled    string // the current child's stall, "" when none
	gaveUp     string // why the supervisor gave up
	lastStatus string // the last STATUS= sent
	failing    bool   // the last send failed (and was warned about)
}

// startSystemd starts reporting to systemd when NOTIFY_SOCKET is set for
// this process, and returns nil when it is not (or NoSystemd is set).
func (s *Supervisor) startSystemd() *systemd {
	if s.cfg.NoSystemd || os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	// WATCHDOG_PID, when set, must name this process. A value systemd
	// would never write is told, and nothing is pinged: the rest of the
	// protocol still works.
	usec, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		s.event(Warning{Err: fmt.Errorf("watchdog: systemd: %w; no WATCHDOG=1 will be sent", err)})
		usec = 0
	}
	sd := &systemd{s: s, ping: usec / 2, wake: make(chan struct{}, 1), quit: make(chan struct{}), waitR: s.cfg.Notify}
	sd.wg.Add(1)
	go func() {
		defer sd.wg.Done()
		sd.serve()
	}()
	return sd
}

// observe takes note of an event of the supervisor's loop.
func (sd *systemd) observe(e Event) {
	if sd == nil {
		return
	}
	sd.mu.Lock()
	switch e := e.(type) {
	case Started:
		sd.stalled = ""
		if !sd.waitR {
			sd.ready = true
		}
	case Ready:
		sd.ready = true
	case Stalled:
		// A soft stall leaves the child running and ends with no event:
		// only a hard one, which ends the child, is shown.
		if e.Stall.Stage == trace.StageHard {
			sd.stalled = fmt.Sprintf("stalled (%s): being killed", e.Stall.Source)
		}
	case GaveUp:
		sd.gaveUp = e.String()
		sd.stopping = true
	case Exited, RestartScheduled, Status, Stopping, Killed:
	default:
		// Records and warnings change nothing systemd is told.
		sd.mu.Unlock()
		return
	}
	sd.mu.Unlock()
	sd.poke()
}

// stop notes that the supervisor begins to stop.
func (sd *systemd) stop() {
	if sd == nil {
		return
	}
	sd.mu.Lock()
	sd.stopping = true
	sd.mu.Unlock()
	sd.poke()
}

func (sd *systemd) poke() {
	select {
	case sd.wake <- struct{}{}:
	default:
	}
}

// close ends the sender and tells systemd the supervisor is stopping,
// if it was not told yet. Serve calls it after its loop ended.
func (sd *systemd) close() {
	close(sd.quit)
	sd.wg.Wait()
	sd.mu.Lock()
	sd.stopping = true
	msgs := sd.transitionsLocked()
	st := "stopped"
	if sd.gaveUp != "" {
		st += ": " + sd.gaveUp
	}
	msgs = append(msgs, "STATUS="+st)
	sd.mu.Unlock()
	sd.send(strings.Join(msgs, "\n"))
}

// serve sends what changed when woken, and WATCHDOG=1 at every tick that
// the loop answers.
func (sd *systemd) serve() {
	var tick <-chan time.Time
	if sd.ping > 0 {
		t := time.NewTicker(sd.ping)
		defer t.Stop()
		tick = t.C
	}
	for {
		ping := false
		select {
		case <-sd.quit:
			return
		case <-sd.wake:
		case <-tick:
			ping = true
		}
		// What events decided goes first: it needs no answer.
		if msg := sd.transitions(); msg != "" {
			sd.send(msg)
		}
		// The loop's answer is the proof of health, and the state.
		st, err := sd.s.Status()
		if err != nil {
			return // Serve is over: close says the rest
		}
		if msg := sd.update(st, ping); msg != "" {
			sd.send(msg)
		}
	}
}

// transitions returns READY=1 and STOPPING=1 when events called for them
// and they were not sent yet.
func (sd *systemd) transitions() string {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	return strings.Join(sd.transitionsLocked(), "\n")
}

func (sd *systemd) transitionsLocked() []string {
	var lines []string
	if sd.ready && !sd.readySent {
		sd.readySent = true
		lines = append(lines, "READY=1")
	}
	if sd.stopping && !sd.stopSent {
		sd.stopSent = true
		lines = append(lines, "STOPPING=1")
	}
	return lines
}

// update returns the datagram that tells systemd the state, when it
// changed, and the ping.
func (sd *systemd) update(st StatusInfo, ping bool) string {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	var lines []string
	if text := sd.statusText(st); text != sd.lastStatus {
		sd.lastStatus = text
		lines = append(lines, "STATUS="+text)
	}
	if ping {
		lines = append(lines, "WATCHDOG=1")
	}
	return strings.Join(lines, "\n")
}

// statusText describes the service in one line: the child's state and
// pid, its own STATUS= text, and the restarts so far.
func (sd *systemd) statusText(st StatusInfo) string {
	var b strings.Builder
	switch {
	case sd.gaveUp != "":
		b.WriteString(sd.gaveUp)
	case st.PID != 0 && sd.stalled != "":
		fmt.Fprintf(&b, "%s: pid %d %s", st.Service, st.PID, sd.stalled)
	case st.PID != 0:
		fmt.Fprintf(&b, "%s: pid %d %s", st.Service, st.PID, st.State)
	case st.State == "backoff":
		fmt.Fprintf(&b, "%s: restarting in %v", st.Service, (time.Duration(st.NextStartInMS) * time.Millisecond).Round(time.Millisecond))
	default:
		fmt.Fprintf(&b, "%s: %s", st.Service, st.State)
	}
	if st.LastExit != nil && st.PID == 0 {
		fmt.Fprintf(&b, " after %s", st.LastExit)
	}
	fmt.Fprintf(&b, ", %d restart", st.Restarts)
	if st.Restarts != 1 {
		b.WriteString("s")
	}
	if st.NotifyStatus != "" && st.PID != 0 {
		// The child's own text, on the one line a STATUS= has.
		b.WriteString("; ")
		b.WriteString(strings.Join(strings.Fields(st.NotifyStatus), " "))
	}
	return b.String()
}

// send writes one datagram to NOTIFY_SOCKET. A failure is a warning, told
// once until a send works again: systemd may simply have gone.
func (sd *systemd) send(msg string) {
	_, err := daemon.SdNotify(false, msg)
	sd.mu.Lock()
	warn := err != nil && !sd.failing
	sd.failing = err != nil
	sd.mu.Unlock()
	if warn {
		sd.s.event(Warning{Err: fmt.Errorf("watchdog: systemd notify: %w", err)})
	}
}
