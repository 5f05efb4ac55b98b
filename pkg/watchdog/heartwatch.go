package watchdog

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
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

// File descriptors of a child, in the order of ExtraFiles (fd 3 up).
const (
	fdCrash   = 3
	fdHearts  = 4
	fdControl = 5
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
	cmd.ExtraFiles = append(cmd.ExtraFiles, s.tableFile, childEnd)
	cmd.Env = append(cmd.Env,
		fmt.Sprintf("%s=%d", hearts.EnvFD, fdHearts),
		fmt.Sprintf("%s=%d", dump.EnvFD, fdControl),
	)
	return client, func() {
		childEnd.Close()
		s.monitor.Reset(time.Now())
	}, nil
}

// checkHearts runs one monitor pass and acts on its events.
func (s *Supervisor) checkHearts(c *child) {
	for _, e := range s.monitor.Check(time.Now()) {
		if c.planned != "" {
			return
		}
		st := trace.Stall{
			Source:    "heart",
			Heart:     e.Name,
			Slot:      e.Slot,
			ThreadID:  e.ThreadID,
			AgeMS:     ms(e.Age),
			TimeoutMS: ms(e.Timeout),
		}
		switch e.Kind {
		case hearts.SoftStall:
			st.Stage = "soft"
			if c.capturing {
				continue
			}
			s.event(Stalled{PID: c.pid, Stall: st})
			s.startCapture(c, st, false)
		case hearts.HardStall, hearts.StartupStall:
			st.Stage = "hard"
			if e.Kind == hearts.StartupStall {
				st.Source = "startup"
			}
			c.planned = "stall"
			c.stall = &st
			s.event(Stalled{PID: c.pid, Stall: st})
			s.startCapture(c, st, true)
		}
	}
}

// startCapture captures the stalled child off the loop; the loop gets a
// captureDone and then records, and for a hard stall kills.
func (s *Supervisor) startCapture(c *child, st trace.Stall, kill bool) {
	c.capturing = true
	rec := s.newRecord(c, trace.ReasonStall)
	rec.Stall = &st
	rec.UptimeMS = ms(time.Since(c.started))
	opts := captureOpts{dir: ArtifactDir(s.cfg.StateDir), name: s.cfg.Name, budget: s.cfg.DumpBudget}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		capture(c, rec, opts)
		select {
		case s.msgs <- captureDone{c: c, rec: rec, kill: kill}:
		case <-s.done:
		}
	}()
}

// captureOpts are the settings a capture needs, copied from the loop.
type captureOpts struct {
	dir, name string
	budget    time.Duration
}

// capture fills rec with the child's own account (cooperative dump) and
// its resource use. It runs on its own goroutine and touches no
// supervisor state: c's fields it reads do not change after the start.
func capture(c *child, rec *trace.Record, o captureOpts) {
	if res, err := trace.SampleResources(c.pid); err == nil {
		rec.Resources = res
	}
	capt := &trace.Capture{Method: "none"}
	rec.Capture = capt
	t0 := time.Now()
	if c.dump != nil {
		dir := filepath.Join(o.dir, fmt.Sprintf("%s-%d-%d", o.name, c.pid, rec.Time.UnixNano()))
		err := os.MkdirAll(dir, 0o700)
		var res dump.Result
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), o.budget+time.Second)
			res, err = c.dump.Request(ctx, dir, o.budget)
			cancel()
		}
		a := trace.Attempt{Method: "cooperative", DurationMS: ms(time.Since(t0))}
		if err == nil {
			for _, f := range res.Files {
				if f.Size > 0 {
					rec.Artifacts = append(rec.Artifacts, trace.Artifact{Kind: f.Kind, Path: f.Path, Bytes: f.Size})
				}
				if f.Kind == dump.KindGoroutines && f.Size > 0 {
					if text, rerr := os.ReadFile(f.Path); rerr == nil {
						if gs, _, perr := trace.ParseCrash(text); perr == nil {
							markCulprit(gs, rec.Stall)
							rec.Goroutines = keepGoroutines(gs, culpritIndex(gs), &rec.GoroutinesOmitted)
						} else {
							err = perr
						}
					}
				}
			}
		}
		if err != nil {
			a.Error = err.Error()
		} else {
			capt.Method = "cooperative"
		}
		capt.Attempts = append(capt.Attempts, a)
	}
	capt.DurationMS = ms(time.Since(t0))
	if capt.Method == "none" {
		var errs []string
		for _, a := range capt.Attempts {
			errs = append(errs, a.Method+": "+a.Error)
		}
		capt.Error = strings.Join(errs, "; ")
		if capt.Error == "" {
			capt.Error = "no capture method available for this child"
		}
	}
}

// markCulprit marks the goroutine that runs the stalled heart's loop: the
// one with a pprof label whose value is the heart's name (the eventer
// labels every loop goroutine with its name, which is its heart's name;
// HeartLabel is there for other code), else the one on the heart's thread.
func markCulprit(gs []trace.Goroutine, st *trace.Stall) {
	if st == nil {
		return
	}
	for i := range gs {
		gs[i].Culprit = false
	}
	if st.Heart != "" {
		for i := range gs {
			for _, v := range gs[i].Labels {
				if v == st.Heart {
					gs[i].Culprit = true
					return
				}
			}
		}
	}
	for i := range gs {
		if st.ThreadID != 0 && gs[i].ThreadID == st.ThreadID {
			gs[i].Culprit = true
			return
		}
	}
}

func culpritIndex(gs []trace.Goroutine) int {
	for i := range gs {
		if gs[i].Culprit {
			return i
		}
	}
	return -1
}

// HeartLabel is the pprof label with which a linked child marks the
// goroutine that beats a heart; its value is the heart's name.
const HeartLabel = "mtev.heart"

// captured handles a finished capture on the loop.
func (s *Supervisor) captured(m captureDone) {
	c := m.c
	c.capturing = false
	rec := m.rec
	switch {
	case m.kill:
		rec.Action = trace.ActionRestart
		if s.ending || s.cfg.Restart == RestartNever {
			rec.Action = trace.ActionStop
		}
		if c == s.cur {
			signalGroup(c.pid, syscall.SIGKILL)
		}
	default:
		rec.Action = trace.ActionKeepRunning
	}
	s.record(rec, nil)
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
