package watchdog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/trace/delve"
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
		case hearts.HardStall, hearts.StartupStall:
			st.Stage = "hard"
			if e.Kind == hearts.StartupStall {
				st.Source = "startup"
			}
		default:
			continue
		}
		s.onStall(c, st)
	}
}

// onStall handles a stall of any source but the notify and start-up
// timers (hearts, reports of the child): a soft one is captured unless a
// capture runs, a hard one is captured (after the running capture) and
// the child killed.
func (s *Supervisor) onStall(c *child, st trace.Stall) {
	if st.Stage != "hard" {
		if c.capturing {
			return
		}
		s.event(Stalled{PID: c.pid, Stall: st})
		s.startCapture(c, st, false)
		return
	}
	c.planned = "stall"
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
	rec := s.newRecord(c, trace.ReasonStall)
	rec.Stall = &st
	rec.UptimeMS = ms(time.Since(c.started))
	opts := captureOpts{
		dir:     filepath.Join(ArtifactDir(s.cfg.StateDir), fmt.Sprintf("%s-%d-%d", s.cfg.Name, c.pid, rec.Time.UnixNano())),
		budget:  s.cfg.DumpBudget,
		delve:   s.cfg.CaptureBudget,
		core:    s.cfg.CoreAboveRSS,
		linked:  s.table != nil && (s.table.IsReady() || len(s.monitor.Hearts(time.Now())) > 0),
		kill:    kill,
		glider:  s.cfg.Glider,
		gbudget: s.cfg.GliderBudget,
		pid:     c.pid,
	}
	if st.PID != 0 {
		// A process of the child's own (a module's) is captured from
		// outside: the dump channel is the child's, not its.
		opts.pid, opts.linked = st.PID, false
	}
	if !opts.linked {
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
		capture(c, rec, opts, killNow)
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
	if s.warnedCapture || !(errors.Is(err, delve.ErrNoDebugInfo) || errors.Is(err, delve.ErrGoVersion)) {
		return
	}
	s.warnedCapture = true
	s.event(Warning{Err: fmt.Errorf("watchdog: stalls of %s cannot be captured from outside: %w", c.exe, err)})
}

// killMsg asks the loop to kill a child whose capture no longer needs it
// alive (its core is written).
type killMsg struct{ c *child }

// captureOpts are the settings a capture needs, copied from the loop.
type captureOpts struct {
	dir     string        // artifact directory of this incident
	budget  time.Duration // cooperative dump budget
	delve   time.Duration // Delve capture budget
	core    uint64        // above this RSS, a hard stall is captured through a core file
	linked  bool          // the child joined the heart table: it can answer dumps
	kill    bool          // hard stall: the child is killed after the capture
	glider  string        // external tracer, if any
	gbudget time.Duration // its budget
	pid     int           // the process captured: the child, or one of its group a report named
}

// capture fills rec with the best account of the stalled child it can get,
// cheapest method first: the child's own dump (linked children), then
// Delve from outside (any Go child with debug information, even with a
// wedged runtime). Every attempt is listed in rec.Capture. It runs on its
// own goroutine and touches no supervisor state.
func capture(c *child, rec *trace.Record, o captureOpts, killNow func()) {
	// Resource use over a short interval, per thread too: it tells a
	// starved process (runnable, waiting for a CPU) from a deadlocked one.
	smp := trace.NewSampler(o.pid, trace.SamplerOptions{})
	var sampled []trace.Thread
	if _, _, err := smp.Sample(); err == nil {
		time.Sleep(trace.ResourceInterval)
		if res, threads, err := smp.Sample(); err == nil {
			rec.Resources, sampled = res, threads
		}
	}
	defer func() { rec.Threads = mergeThreads(rec.Threads, sampled) }()
	capt := &trace.Capture{Method: "none"}
	rec.Capture = capt
	t0 := time.Now()
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		capt.Error = err.Error()
		return
	}
	if o.linked && c.dump != nil {
		a := cooperative(c, rec, o)
		capt.Attempts = append(capt.Attempts, a)
		if a.Error == "" {
			capt.Method = a.Method
		}
	}
	if capt.Method == "none" {
		var a trace.Attempt
		if o.kill && o.core > 0 && rec.Resources != nil && rec.Resources.RSSBytes > o.core {
			a = delveCore(c, rec, o, killNow)
		} else {
			a = delveLive(c, rec, o)
		}
		capt.Attempts = append(capt.Attempts, a)
		if a.Error == "" {
			capt.Method = a.Method
		}
	}
	if o.glider != "" {
		a := runGlider(c, rec, o)
		capt.Attempts = append(capt.Attempts, a)
		if a.Error == "" && capt.Method == "none" {
			capt.Method = a.Method
		}
	}
	capt.DurationMS = ms(time.Since(t0))
	for _, a := range capt.Attempts {
		if a.Error != "" {
			msg := a.Error
			if !strings.HasPrefix(msg, a.Method+": ") {
				msg = a.Method + ": " + msg
			}
			capt.Error = strings.TrimPrefix(capt.Error+"; ", "; ") + msg
		}
	}
	if capt.Method == "none" && capt.Error == "" {
		capt.Error = "no capture method available for this child"
	}
	if capt.Method != "none" {
		capt.Error = ""
	}
}

// mergeThreads adds the sampled state and CPU use to the threads a
// capture read (with their stacks), or returns the sampled threads when
// the capture read none.
func mergeThreads(captured, sampled []trace.Thread) []trace.Thread {
	if len(captured) == 0 {
		return sampled
	}
	byID := make(map[int]trace.Thread, len(sampled))
	for _, t := range sampled {
		byID[t.ID] = t
	}
	for i := range captured {
		if t, ok := byID[captured[i].ID]; ok {
			captured[i].CPUMS = t.CPUMS
			if captured[i].State == "" {
				captured[i].State = t.State
			}
		}
	}
	return captured
}

// runGlider runs the external tracer on the stalled child.
func runGlider(c *child, rec *trace.Record, o captureOpts) trace.Attempt {
	t0 := time.Now()
	a := trace.Attempt{Method: "glider"}
	what := rec.Stall.Source
	if rec.Stall.Heart != "" {
		what = rec.Stall.Heart
	} else if rec.Stall.Name != "" {
		what = rec.Stall.Source + "/" + rec.Stall.Name
	}
	art, err := trace.RunGlider(context.Background(), o.glider, o.pid, "watchdog/"+what, filepath.Join(o.dir, "glider.txt"), o.gbudget)
	if art.Path != "" {
		rec.Artifacts = append(rec.Artifacts, art)
	}
	a.DurationMS = ms(time.Since(t0))
	if err != nil {
		a.Error = err.Error()
	}
	return a
}

// cooperative asks a linked child for its own dump.
func cooperative(c *child, rec *trace.Record, o captureOpts) trace.Attempt {
	t0 := time.Now()
	a := trace.Attempt{Method: "cooperative"}
	ctx, cancel := context.WithTimeout(context.Background(), o.budget+time.Second)
	res, err := c.dump.Request(ctx, o.dir, o.budget)
	cancel()
	if err == nil {
		for _, f := range res.Files {
			if f.Size > 0 {
				rec.Artifacts = append(rec.Artifacts, trace.Artifact{Kind: f.Kind, Path: f.Path, Bytes: f.Size})
			}
			if f.Kind != dump.KindGoroutines || f.Size <= 0 {
				continue
			}
			text, rerr := os.ReadFile(f.Path)
			if rerr != nil {
				err = rerr
				continue
			}
			gs, _, perr := trace.ParseCrash(text)
			if perr != nil {
				err = perr
				continue
			}
			storeGoroutines(rec, gs)
		}
		if err == nil && len(rec.Goroutines) == 0 {
			err = errors.New("the child wrote no goroutine profile")
		}
	}
	a.DurationMS = ms(time.Since(t0))
	if err != nil {
		a.Error = err.Error()
	}
	return a
}

// delveLive attaches to the child, reads every goroutine and thread, and
// detaches, leaving it running.
func delveLive(c *child, rec *trace.Record, o captureOpts) trace.Attempt {
	t0 := time.Now()
	a := trace.Attempt{Method: "delve"}
	// A child to be killed afterwards is stopped first: the attach is then
	// shorter (see delve.Options.StopFirst).
	res, err := delve.Capture(context.Background(), o.pid, delve.Options{Budget: o.delve, StopFirst: o.kill})
	if res != nil {
		useDelve(rec, res)
		rec.Capture.PauseMS = ms(res.Pause)
	}
	a.DurationMS = ms(time.Since(t0))
	if err != nil {
		a.Error = err.Error()
	}
	return a
}

// delveCore writes a core of the (large) child, has it killed at once so
// the restart is not delayed by the analysis, and reads the core.
func delveCore(c *child, rec *trace.Record, o captureOpts, killNow func()) trace.Attempt {
	t0 := time.Now()
	a := trace.Attempt{Method: "delve-core"}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", o.pid))
	if err == nil {
		core := filepath.Join(o.dir, "core")
		var pause time.Duration
		pause, err = delve.DumpCoreWith(context.Background(), o.pid, core, delve.Options{StopFirst: true})
		rec.Capture.PauseMS = ms(pause)
		killNow()
		if err == nil {
			var res *delve.Result
			res, err = delve.ReadCore(core, exe, delve.Options{})
			if res != nil {
				useDelve(rec, res)
			}
			if fi, serr := os.Stat(core); serr == nil {
				rec.Artifacts = append(rec.Artifacts, trace.Artifact{Kind: "core", Path: core, Bytes: fi.Size()})
			}
		}
	}
	a.DurationMS = ms(time.Since(t0))
	if err != nil {
		a.Error = err.Error()
	}
	return a
}

// useDelve stores a Delve result (live or from a core) in rec.
func useDelve(rec *trace.Record, res *delve.Result) {
	storeGoroutines(rec, res.Goroutines)
	rec.Threads = res.Threads
}

// storeGoroutines stores gs in rec, bounded for storage, with one culprit
// marked: for a stall, the goroutine on the stalled heart's thread, else
// the one labelled with its name; else the one a parser or Delve marked
// (the goroutine that panicked, a running one); else trace.GuessCulprit's
// choice.
func storeGoroutines(rec *trace.Record, gs []trace.Goroutine) {
	markCulprit(gs, rec.Stall)
	if culpritIndex(gs) < 0 {
		if i := trace.GuessCulprit(gs); i >= 0 {
			gs[i].Culprit = true
		}
	}
	rec.Goroutines = keepGoroutines(gs, culpritIndex(gs), &rec.GoroutinesOmitted)
}

// markCulprit marks the goroutine that runs the stalled heart's loop: the
// one on the heart's thread (known to Delve captures), else the one with a
// pprof label whose value is the heart's name (the eventer labels every
// loop goroutine with its name, which is its heart's name; HeartLabel is
// there for other code).
func markCulprit(gs []trace.Goroutine, st *trace.Stall) {
	if st == nil {
		return
	}
	for i := range gs {
		gs[i].Culprit = false
	}
	if st.ThreadID != 0 {
		for i := range gs {
			if gs[i].ThreadID == st.ThreadID {
				gs[i].Culprit = true
				return
			}
		}
	}
	if len(st.Labels) > 0 {
		// A reported stall: the goroutine carrying every label named.
		for i := range gs {
			if hasLabels(gs[i].Labels, st.Labels) {
				gs[i].Culprit = true
				return
			}
		}
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
	if m.kill {
		rec.Action = s.actionFor(false)
		if c == s.cur {
			signalGroup(c.pid, syscall.SIGKILL)
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

// hasLabels reports whether have holds every label of want.
func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
