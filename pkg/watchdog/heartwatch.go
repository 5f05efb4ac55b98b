package watchdog

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/capture"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/hearts"
)

// HeartsMode says whether a child is watched through the heart table.
type HeartsMode string

const (
	// HeartsAuto offers the table to every child and watches the hearts
	// a child creates; a child that creates none is not watched this way.
	HeartsAuto HeartsMode = "auto"
	// HeartsRequire also treats a child that has created no heart by the
	// start-up deadline as stalled.
	HeartsRequire HeartsMode = "require"
	// HeartsOff offers no table.
	HeartsOff HeartsMode = "off"
)

// Defaults of the heart settings.
const (
	DefaultHeartSlots   = 1024
	DefaultHeartTimeout = hearts.DefaultTimeout
	DefaultHeartGrace   = hearts.DefaultGrace
	DefaultDumpBudget   = 2 * time.Second
)

// captureDone carries a finished stall capture back to the loop.
type captureDone struct {
	c    *child
	rec  *trace.Record
	kill bool
}

// openHearts creates the heart table and its monitor when hearts are on.
func (s *Supervisor) openHearts() (cleanup func(), err error) {
	if s.cfg.Hearts == HeartsOff {
		return func() {}, nil
	}
	t, f, err := hearts.Create(s.cfg.HeartSlots)
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	s.table, s.tableFile = t, f
	startup := s.cfg.StartupTimeout
	s.monitor = hearts.NewMonitor(t, hearts.MonitorConfig{
		DefaultTimeout: s.cfg.HeartTimeout,
		Grace:          s.cfg.HeartGrace,
		NoSoft:         s.cfg.NoSoftStall,
		Startup:        startup,
		RequireHeart:   s.cfg.Hearts == HeartsRequire,
	})
	return func() { t.Close(); f.Close() }, nil
}

// attachHearts adds the heart table and the dump channel to a child about
// to start. It returns what the parent keeps, and a function to call once
// the child has started (or failed to).
func (s *Supervisor) attachHearts(cmd *exec.Cmd, start int) (client *dump.Client, started func(), err error) {
	if s.table == nil {
		return nil, func() {}, nil
	}
	if start > 1 {
		if err := s.table.Reset(); err != nil {
			return nil, nil, fmt.Errorf("watchdog: %w", err)
		}
	}
	parent, childEnd, err := dump.Pair()
	if err != nil {
		return nil, nil, fmt.Errorf("watchdog: %w", err)
	}
	client, err = dump.NewClient(parent)
	parent.Close()
	if err != nil {
		childEnd.Close()
		return nil, nil, fmt.Errorf("watchdog: %w", err)
	}
	cmd.Env = append(cmd.Env,
		fmt.Sprintf("%s=%d", hearts.EnvFD, 3+len(cmd.ExtraFiles)),
		fmt.Sprintf("%s=%d", dump.EnvFD, 4+len(cmd.ExtraFiles)),
	)
	cmd.ExtraFiles = append(cmd.ExtraFiles, s.tableFile, childEnd)
	return client, func() {
		childEnd.Close()
		s.monitor.Reset(time.Now())
	}, nil
}

// checkHearts runs one monitor pass and acts on its events.
func (s *Supervisor) checkHearts(c *child) {
	for _, e := range s.monitor.Check(time.Now()) {
		if c.planned != planNone {
			return
		}
		st := trace.Stall{
			Source:    trace.SourceHeart,
			Heart:     e.Name,
			Slot:      e.Slot,
			ThreadID:  e.ThreadID,
			AgeMS:     ms(e.Age),
			TimeoutMS: ms(e.Timeout),
		}
		switch e.Kind {
		case hearts.SoftStall:
			st.Stage = trace.StageSoft
		case hearts.HardStall, hearts.StartupStall:
			st.Stage = trace.StageHard
			if e.Kind == hearts.StartupStall {
				st.Source = trace.SourceStartup
			}
		default:
			continue
		}
		s.stalled(c, st)
	}
}

// stalled is the one entry of a stall, whatever its source (st.Source:
// a heart, the notify watchdog, the start-up deadline, or a unit of work
// the child reported): a soft one is captured unless a capture runs and
// the child kept running; a hard one is captured (after the running
// capture: one capture at a time) and the child killed, and the restart
// policy applies when it is gone.
func (s *Supervisor) stalled(c *child, st trace.Stall) {
	if st.Stage != trace.StageHard {
		if c.capturing {
			return
		}
		s.event(Stalled{PID: c.pid, Stall: st})
		s.startCapture(c, st, false)
		return
	}
	c.planned = planStall
	c.stall = &st
	s.event(Stalled{PID: c.pid, Stall: st})
	if c.capturing {
		// One capture at a time (one tracer, one dump request): the hard
		// one starts when the soft one is done.
		c.pendingHard = &st
		return
	}
	s.startCapture(c, st, true)
}

// startCapture captures the stalled child off the loop; the loop gets a
// captureDone and then records, and for a hard stall kills.
func (s *Supervisor) startCapture(c *child, st trace.Stall, kill bool) {
	c.capturing = true
	s.captures++
	rec := s.newRecord(c, trace.ReasonStall)
	rec.Stall = &st
	rec.UptimeMS = ms(s.since(c.started))
	t := &capture.Target{
		PID:          c.pid,
		Dir:          incidentDir(ArtifactDir(s.cfg.StateDir), rec),
		Stall:        rec.Stall,
		Kill:         kill,
		Linked:       s.table != nil && (s.table.IsReady() || len(s.monitor.Hearts(time.Now())) > 0),
		Dump:         c.dump,
		DumpBudget:   s.cfg.DumpBudget,
		Budget:       s.cfg.CaptureBudget,
		CoreAboveRSS: s.cfg.CoreAboveRSS,
		Glider:       s.cfg.Glider,
		GliderBudget: s.cfg.GliderBudget,
	}
	if st.PID != 0 {
		// A process of the child's own (a module's) is captured from
		// outside: the dump channel is the child's, not its.
		t.PID, t.Linked = st.PID, false
	}
	if !t.Linked {
		s.warnUncapturable(c)
	}
	killNow := func() {
		select {
		case s.msgs <- killMsg{c: c}:
		case <-s.done:
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t.KillNow = killNow
		runChain(t, rec)
		select {
		case s.msgs <- captureDone{c: c, rec: rec, kill: kill}:
		case <-s.done:
		}
	}()
}

// warnUncapturable says, once per supervisor, that a child that cannot
// capture itself cannot be captured from outside either (no debug
// information, or a Go version this build of Delve does not read).
func (s *Supervisor) warnUncapturable(c *child) {
	var err error
	select {
	case err = <-c.preload:
		c.preload <- err // keep the verdict for later stalls
	default:
		return // not known yet: the record will say
	}
	chk := capture.Check()
	if s.warnedCapture || err == nil || chk == nil || !chk.Uncapturable(err) {
		return
	}
	s.warnedCapture = true
	s.event(Warning{Err: fmt.Errorf("watchdog: stalls of %s cannot be captured from outside: %w", c.exe, err)})
}

// killMsg asks the loop to kill a child whose capture no longer needs it
// alive (its core is written).
type killMsg struct{ c *child }

// captured handles a finished capture on the loop.
func (s *Supervisor) captured(m captureDone) {
	c := m.c
	c.capturing = false
	c.probeCaptureEnded(time.Now())
	s.captures--
	rec := m.rec
	if m.kill {
		rec.Action = c.action
		if rec.Action == "" {
			rec.Action = s.actionFor(false)
		}
		if c == s.cur {
			s.sys.signalGroup(c.pid, syscall.SIGKILL)
		}
	} else {
		rec.Action = decide(outcome{soft: true})
	}
	s.record(rec, nil)
	if st := c.pendingHard; st != nil && c == s.cur {
		c.pendingHard = nil
		s.startCapture(c, *st, true)
	}
}

// goDebug adds settings to a GODEBUG value, keeping the user's.
func goDebug(cur string, add ...string) string {
	have := map[string]bool{}
	for _, kv := range strings.Split(cur, ",") {
		k, _, _ := strings.Cut(kv, "=")
		have[k] = true
	}
	parts := []string{}
	if cur != "" {
		parts = append(parts, cur)
	}
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		if !have[k] {
			parts = append(parts, kv)
		}
	}
	return strings.Join(parts, ",")
}
