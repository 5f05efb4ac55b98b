package watchdog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/mtev-supervise/mtev-supervise/internal/reap"
	"github.com/mtev-supervise/mtev-supervise/pkg/journal"
	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/hearts"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/incident"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/report"
)

// Errors that end Serve. The CLI maps them to documented exit statuses.
var (
	// ErrStart: the command could not be started the first time (missing,
	// not executable). Later start failures count as deaths instead.
	ErrStart = errors.New("watchdog: cannot start the command")
	// ErrCrashLoop: Retries deaths fell within Span; the supervisor gave up.
	ErrCrashLoop = errors.New("watchdog: crash-loop limit reached")
	// ErrSameCrash: SameCrashLimit incidents with one fingerprint fell
	// within SameCrashSpan; the supervisor gave up.
	ErrSameCrash = errors.New("watchdog: same-crash limit reached")
)

// ChildExitError is returned by Serve under RestartNever when the child
// failed, and with Config.Init when the child's last end was not a clean
// exit: its status becomes the supervisor's.
type ChildExitError struct{ Exit trace.Exit }

func (e *ChildExitError) Error() string { return "watchdog: child ended with " + e.Exit.String() }

// Status returns the shell-style exit status: the code, or 128+signal.
func (e *ChildExitError) Status() int {
	if e.Exit.Code != nil {
		return *e.Exit.Code
	}
	if sig := unixSignal(e.Exit.Signal); sig != 0 {
		return 128 + int(sig)
	}
	return 1
}

// Appender stores incident records; *journal.Writer is one.
type Appender = incident.Appender

// Options are the hooks of a Supervisor. All are optional.
type Options struct {
	// Output receives every line of child output. Nil discards output
	// (it is still kept for the incident record's log tail).
	Output OutputFunc
	// Events receives supervisor events, one call at a time, from the
	// supervisor's loop or its journal writer; it must not block.
	Events func(Event)
	// Journal receives incident records. Nil opens JournalDir(StateDir).
	Journal Appender
	// Now is the clock for records; default time.Now.
	Now func() time.Time
}

// Supervisor runs one child and keeps it running. Create it with New and
// run it with Serve; Restart, Stop, Signal and Status may be called from any
// goroutine while Serve runs.
type Supervisor struct {
	cfg  Config
	opts Options

	clock   clock         // the timers' time (clock.go)
	sys     sysFuncs      // the OS calls of the policy paths
	msgs    chan any      // to the loop
	done    chan struct{} // closed when Serve returns
	wg      sync.WaitGroup
	records chan pending // to the journal writer
	eventMu sync.Mutex   // one Events call at a time

	// Owned by the loop goroutine.
	cur           *child
	starts        int
	backoff       *backoff
	loop          *crashLoop
	store         *incident.Store
	notify        *notifySocket
	table         *hearts.Table
	tableFile     *os.File
	monitor       *hearts.Monitor
	spawn         *spawner
	tree          string // marks the child's processes (see contain.go)
	lastExit      *trace.Exit
	warnedCapture bool // warnUncapturable said its piece
	preloaded     preloadCache
	lastEnd       time.Time
	nextAt        time.Time
	captures      int   // captures running; Serve waits for their records
	ending        bool  // no more starts: stop requested or a final error
	final         error // what Serve returns once the child is gone
	// Sockets held by the supervisor (sockets.go).
	sockets []*heldSocket
	fdstore fdStore

	// Set before Serve starts any goroutine (systemd.go).
	sd *systemd // reports to systemd; nil when not under it

	probesDone chan struct{} // the last child's probe goroutine has ended (probes.go)
}

// child is one started process.
type child struct {
	cmd         *exec.Cmd
	pid         int
	pidfd       int
	start       int // start count, 1 for the first child
	started     time.Time
	tail        *tail
	exe         string // the executable that was started
	crash       crashText
	crashFD     *os.File
	outR        *os.File
	errR        *os.File
	pumps       sync.WaitGroup
	ready       bool
	status      string
	mainPID     int
	planned     plan         // why the supervisor is ending it, if it is
	sentSignal  string       // the last signal the supervisor sent it on request ("SIGUSR2")
	capturing   bool         // a stall capture is running
	pendingHard *trace.Stall // a hard stall waiting for the running capture
	action      trace.Action // decided when it died of a hard stall before its capture ended
	preload     chan error   // the capture Checker's verdict on the executable
	dump        *dump.Client
	reports     *report.Receiver // stalls the child reports of its own work
	stall       *trace.Stall
	killT       timer
	startupT    timer
	startupAt   time.Time
	watchT      timer
	watchDur    time.Duration

	probes *probeSet // its probes (probes.go), nil without
}

// plan says why the supervisor is ending a child.
type plan string

const (
	planNone    plan = ""        // it is not: a death is a failure
	planStop    plan = "stop"    // a stop was asked for
	planRestart plan = "restart" // a restart was asked for
	planStall   plan = "stall"   // killed for a hard stall (recorded when found)
)

// timerKind names a child's timers.
type timerKind int

const (
	timerKill     timerKind = iota // the stop timeout: SIGKILL
	timerStartup                   // the start-up deadline
	timerWatchdog                  // the notify watchdog deadline
)

// controlOp is an operation asked of the loop (Status, Restart, Stop,
// Signal, Reconfigure, and the control socket's).
type controlOp string

const (
	opStatus      controlOp = "status"
	opRestart     controlOp = "restart"
	opStop        controlOp = "stop"
	opSignal      controlOp = "signal"
	opReconfigure controlOp = "reconfigure"
)

type sameCrashMsg struct{ fp string }

type exitMsg struct {
	c   *child
	ps  *os.ProcessState
	err error
}

type request struct {
	op    controlOp
	sig   syscall.Signal
	cfg   *Config
	reply chan any
}

// New checks cfg and returns a Supervisor. It starts nothing.
func New(cfg Config, opts Options) (*Supervisor, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Glider != "" {
		// It runs in the incident's directory: resolve it now.
		if p, err := exec.LookPath(cfg.Glider); err == nil {
			if abs, err := filepath.Abs(p); err == nil {
				cfg.Glider = abs
			}
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Supervisor{
		clock:   realClock{},
		sys:     realSys(),
		cfg:     cfg,
		opts:    opts,
		msgs:    make(chan any, 16),
		done:    make(chan struct{}),
		backoff: newBackoff(cfg),
		loop:    newCrashLoop(cfg.Retries, cfg.Span),
		tree:    newTreeToken(),
	}, nil
}

// Config returns the configuration in force, defaults filled in.
func (s *Supervisor) Config() Config { return s.cfg }

// Serve starts the child and supervises it until ctx is done (graceful
// stop, then nil), Stop is called (nil), the policy says the child is not
// to be restarted (nil, or a *ChildExitError under RestartNever), the
// crash-loop limit is reached (ErrCrashLoop) or the first start fails
// (ErrStart). It never returns while a child it started is alive.
func (s *Supervisor) Serve(ctx context.Context) error {
	var cleanup []func()
	defer func() {
		// Askers first, so that nothing waits on a loop that is gone;
		// then the listeners, their goroutines, and the rest.
		close(s.done)
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()
	if err := ensureDir(s.cfg.StateDir); err != nil {
		return err
	}
	if err := setSubreaper(); err != nil {
		return err
	}
	if sd := s.startSystemd(); sd != nil {
		s.sd = sd
		cleanup = append(cleanup, sd.close)
	}
	if s.opts.Journal != nil {
		s.store = incident.NewStore(s.cfg.StateDir, s.opts.Journal)
	} else {
		// The repairs the journal makes on opening (and later, after
		// another process left damage) are told as warnings.
		st, err := incident.Open(s.cfg.StateDir, incident.Options{
			MaxBytes: s.cfg.JournalMaxBytes,
			MaxAge:   s.cfg.JournalMaxAge,
			OnRepair: func(d journal.Damage, repair string) {
				s.event(Warning{Err: fmt.Errorf("watchdog: journal repaired: %s: %s", d, repair)})
			},
		})
		if err != nil {
			return err
		}
		s.store = st
	}
	cleanup = append(cleanup, func() { s.store.Close() })
	s.spawn = newSpawner()
	cleanup = append(cleanup, s.spawn.close, s.wg.Wait)
	g, err := startGuard(s.spawn, s.tree)
	if err != nil {
		return err
	}
	cleanup = append(cleanup, g.close)
	closeHearts, err := s.openHearts()
	if err != nil {
		return err
	}
	cleanup = append(cleanup, closeHearts)
	// Sockets held by the supervisor: open before the first start; the
	// descriptor store is cleared when the supervisor ends.
	closeSockets, err := s.openSockets()
	if err != nil {
		return err
	}
	s.fdstore.max = s.cfg.FDStoreMax
	cleanup = append(cleanup, closeSockets, s.fdstore.clear)

	if s.cfg.Notify {
		n, err := listenNotify(s.cfg.StateDir, s.cfg.Name, s.cfg.otherUser())
		if err != nil {
			return err
		}
		s.notify = n
		n.access = s.cfg.NotifyAccess
		n.warn = func(err error) { s.event(Warning{Err: err}) }
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			n.serve(s.msgs, s.done)
		}()
		cleanup = append(cleanup, n.close)
	}

	ctl, err := listenControl(SocketPath(s.cfg.StateDir, s.cfg.Name))
	if err != nil {
		return err
	}
	ctl.warn = func(err error) { s.event(Warning{Err: err}) }
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctl.serve(s)
	}()
	cleanup = append(cleanup, ctl.close)

	// Orphans of the child's tree are reaped off the loop, so that a
	// /proc scan never delays a restart.
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	reaperDone := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-sigchld:
				reap.Orphans()
			case <-reaperDone:
				return
			}
		}
	}()
	cleanup = append(cleanup, func() { signal.Stop(sigchld); close(reaperDone) })

	// Records are written off the loop too: a journal fsync never delays
	// a restart. The writer drains its queue before Serve returns.
	s.records = make(chan pending, 64)
	artifacts := s.store.ArtifactDir()
	artifactMax := s.cfg.ArtifactMaxBytes
	same := newSameCrash(s.cfg.SameCrashLimit, s.cfg.SameCrashSpan)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for p := range s.records {
			complete(p, artifacts)
			if same.record(p.rec.Fingerprint, p.rec.Time) {
				p.rec.Action = trace.ActionGiveUp
				select {
				case s.msgs <- sameCrashMsg{fp: p.rec.Fingerprint}:
				case <-s.done:
				}
			}
			s.write(p.rec)
			if len(p.rec.Artifacts) > 0 && artifactMax > 0 {
				pruneArtifacts(artifacts, artifactMax)
			}
		}
	}()
	cleanup = append(cleanup, func() { close(s.records) })
	return s.run(ctx)
}

// run is the supervisor's loop: the only goroutine that touches its state.
func (s *Supervisor) run(ctx context.Context) error {
	if err := s.startChild(); err != nil {
		return err
	}
	ctxDone := ctx.Done()
	var restartT timer
	var heartT *time.Ticker
	var heartPoll time.Duration
	defer func() {
		if heartT != nil {
			heartT.Stop()
		}
	}()
	for {
		if s.cur == nil && s.ending && s.captures == 0 {
			// A capture that outlives its child (a core read after the
			// kill) still brings its record.
			return s.endStatus()
		}
		if s.cur == nil && restartT == nil && !s.ending {
			d := s.nextAt.Sub(s.clock.Now())
			if d <= 0 {
				if err := s.startChild(); err != nil {
					return err
				}
				continue
			}
			restartT = s.clock.NewTimer(d)
		}
		var c = s.cur
		var heartC <-chan time.Time
		if c != nil && s.monitor != nil {
			if p := s.monitor.PollInterval(); heartT == nil || p != heartPoll {
				if heartT != nil {
					heartT.Stop()
				}
				heartT, heartPoll = time.NewTicker(p), p
			}
			heartC = heartT.C
		}
		select {
		case <-heartC:
			s.checkHearts(c)
		case <-ctxDone:
			ctxDone = nil
			s.end(nil, "shutdown")
		case <-timerC(restartT):
			restartT = nil
			if s.cur == nil && !s.ending {
				if err := s.startChild(); err != nil {
					return err
				}
			}
		case <-timerC(childTimer(c, timerKill)):
			c.killT = nil
			s.event(Killed{PID: c.pid})
			s.sys.signalGroup(c.pid, syscall.SIGKILL)
			killTree(s.tree, c.pid)
		case <-timerC(childTimer(c, timerStartup)):
			c.startupT = nil
			if !c.ready && c.planned == planNone {
				s.stalled(c, trace.Stall{Source: trace.SourceStartup, Stage: trace.StageHard, AgeMS: ms(s.since(c.started)), TimeoutMS: ms(s.cfg.StartupTimeout)})
			}
		case <-timerC(childTimer(c, timerWatchdog)):
			c.watchT = nil
			if c.planned == planNone {
				s.stalled(c, trace.Stall{Source: trace.SourceNotify, Stage: trace.StageHard, AgeMS: ms(c.watchDur), TimeoutMS: ms(c.watchDur)})
			}
		case m := <-s.msgs:
			switch m := m.(type) {
			case exitMsg:
				if restartT != nil {
					restartT.Stop()
					restartT = nil
				}
				s.exited(m)
			case notifyMsg:
				s.handleNotify(m)
			case captureDone:
				s.captured(m)
			case reportMsg:
				s.reported(m)
			case probeMsg:
				s.probed(m)
			case killMsg:
				if m.c == s.cur {
					s.sys.signalGroup(m.c.pid, syscall.SIGKILL)
				}
			case sameCrashMsg:
				if !s.ending {
					s.event(GaveUp{Deaths: s.cfg.SameCrashLimit, Span: s.cfg.SameCrashSpan, Fingerprint: m.fp})
					s.end(fmt.Errorf("%w: %s %d times within %v", ErrSameCrash, m.fp, s.cfg.SameCrashLimit, s.cfg.SameCrashSpan), "same-crash limit")
				}
			case request:
				if m.op == opRestart && s.cur == nil && restartT != nil && !s.ending {
					restartT.Stop()
					restartT = nil
					s.nextAt = time.Time{}
				}
				m.reply <- s.handle(m)
			}
		}
	}
}

func timerC(t timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C()
}

func childTimer(c *child, which timerKind) timer {
	if c == nil {
		return nil
	}
	switch which {
	case timerKill:
		return c.killT
	case timerStartup:
		return c.startupT
	default:
		return c.watchT
	}
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

func (s *Supervisor) event(e Event) {
	s.sd.observe(e)
	if s.opts.Events != nil {
		s.eventMu.Lock()
		s.opts.Events(e)
		s.eventMu.Unlock()
	}
}

// exited handles the end of the current child.
func (s *Supervisor) exited(m exitMsg) {
	c := m.c
	if c != s.cur {
		return
	}
	s.cur = nil
	s.notifyTrack(nil)
	c.stopProbes()
	for _, t := range []timer{c.killT, c.startupT, c.watchT} {
		if t != nil {
			t.Stop()
		}
	}
	// Whatever is left of the child's tree goes with it: its process
	// group, and processes that left the group or the session.
	s.sys.signalGroup(c.pid, syscall.SIGKILL)
	killTree(s.tree)
	defer c.crashFD.Close()
	defer c.reports.Close()
	if c.dump != nil {
		defer c.dump.Close()
	}
	if !waitTimeout(&c.pumps, 2*time.Second) {
		// A process that left the child's group still holds its output.
		c.outR.Close()
		c.errR.Close()
		c.pumps.Wait()
		s.event(Warning{Err: fmt.Errorf("watchdog: pid %d: a process outside its group kept its output open; stopped reading it", c.pid)})
	}
	uptime := s.since(c.started)
	ex := trace.Exit{}
	if m.ps != nil {
		code, sig, core := exitOf(m.ps)
		if sig != 0 {
			ex.Signal, ex.CoreDumped = signalName(sig), core
		} else {
			ex.Code = &code
		}
	}
	if c.sentSignal != "" && ex.Signal == c.sentSignal {
		// Killed by a signal this supervisor forwarded (HUP, USR1, USR2,
		// a Signal call): the sender is known.
		ex.Sent, ex.SenderPID = true, s.sys.getpid()
	}
	s.lastExit, s.lastEnd = &ex, s.clock.Now()
	s.event(Exited{PID: c.pid, Exit: ex, Uptime: uptime, Planned: c.planned != planNone})

	switch c.planned {
	case planStop:
		return
	case planRestart:
		s.nextAt = time.Time{}
		return
	case planStall:
		// Recorded when the capture ends (a core read may end after the
		// death); a failure for the policy. The action is decided now,
		// before this death counts.
		c.action = s.actionFor(false)
		s.afterDeath(uptime, false)
		return
	}
	reason := trace.ReasonExit
	if ex.Signal != "" {
		reason = trace.ReasonCrash
	}
	// A linked child's crash output arrives through its memfd; any other
	// Go child's through stderr.
	crash, from := readCrashFD(c.crashFD), "crash-output"
	if len(crash) == 0 {
		crash, from = c.crash.bytes(), "stderr"
	}
	if isGoCrash(ex, crash) {
		reason = trace.ReasonCrash
	} else {
		crash = nil
	}
	clean := ex.Code != nil && *ex.Code == 0
	rec := s.newRecord(c, reason)
	rec.Exit = &ex
	rec.UptimeMS = ms(uptime)
	rec.Action = s.actionFor(clean)
	p := pending{rec: rec, crash: crash, crashFrom: from}
	if ex.CoreDumped {
		var why string
		if p.core, why = findCore(s.cfg.Dir, c.pid, c.started); p.core != "" {
			p.exe = c.exe
		} else {
			rec.Capture = &trace.Capture{Method: "none", Error: "core dumped, but " + why}
		}
	}
	s.records <- p
	s.afterDeath(uptime, clean)
}

// end stops the supervisor: the child is stopped gracefully and Serve
// returns final.
func (s *Supervisor) end(final error, why string) {
	s.ending = true
	s.final = final
	s.sd.stop()
	if s.cur != nil && s.cur.planned != planStall {
		s.stopChild(s.cur, planStop, why)
	}
}

// stopChild sends the stop signal to the child's process group and arms
// the kill timer.
func (s *Supervisor) stopChild(c *child, planned plan, why string) {
	if c.planned == planned || c.killT != nil {
		c.planned = planned
		return
	}
	c.planned = planned
	s.event(Stopping{PID: c.pid, Signal: signalName(s.cfg.StopSignal), Reason: why})
	s.sys.signalGroup(c.pid, s.cfg.StopSignal)
	signalTree(s.tree, c.pid, s.cfg.StopSignal)
	// A stopped (SIGSTOP) child cannot act on the signal until continued.
	s.sys.signalGroup(c.pid, syscall.SIGCONT)
	c.killT = s.clock.NewTimer(s.cfg.StopTimeout)
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// ArtifactDir holds files kept with records (large crash dumps, profiles).
func ArtifactDir(stateDir string) string { return incident.ArtifactDir(stateDir) }
