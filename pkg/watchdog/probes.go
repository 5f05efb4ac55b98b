package watchdog

// Probes of a child that links nothing (docs/probes.md), with Kubernetes'
// semantics: a liveness probe whose Failures failures in a row are a hard
// stall (source "probe": captured, killed, restarted, like a heart past
// its hard deadline), and a start-up probe that gates readiness and the
// liveness probe, whose Failures failures in a row are a start-up stall.
//
// One goroutine per child runs its probes, one at a time: the next probe
// starts one interval after the previous one started, or when it ended if
// it took longer. It only probes and reports; the loop owns the counts
// and decides (probed). It is started with the child and stopped when
// the child ends or has stalled, and the next child's probes wait for it.
//
// There is no soft stage: a single failure is common (a GC pause, a busy
// moment) and a capture from outside pauses the child, which would make
// the next probe fail. The hard stall captures the child before it is
// killed, so the culprit of a real hang is in its record all the same.
// Failures of probes that overlapped a capture of the child (a heart's
// soft stall, say) are not counted: the capture paused the child.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// Defaults of the probe settings (Kubernetes').
const (
	DefaultProbeInterval = 10 * time.Second
	DefaultProbeTimeout  = time.Second
	DefaultProbeFailures = 3
)

// ProbeConfig is one probe of the child.
type ProbeConfig struct {
	// Target: "http://HOST:PORT/PATH", "https://HOST:PORT/PATH",
	// "tcp://HOST:PORT" or "exec:COMMAND" (see ParseProbe); "" is no
	// probe.
	Target string
	// Interval from the start of one probe to the start of the next
	// (default 10s); a probe that takes longer delays the next one.
	Interval time.Duration
	// Timeout of one probe (default 1s): past it, the probe fails (an exec
	// probe's process group is killed). It may exceed Interval.
	Timeout time.Duration
	// Failures in a row that are a stall (default 3).
	Failures int
}

func (p ProbeConfig) withDefaults() ProbeConfig {
	if p.Interval == 0 {
		p.Interval = DefaultProbeInterval
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultProbeTimeout
	}
	if p.Failures == 0 {
		p.Failures = DefaultProbeFailures
	}
	return p
}

// probeDefaults fills in the probes' defaults (called by withDefaults).
func (c Config) probeDefaults() Config {
	c.Probe = c.Probe.withDefaults()
	c.StartupProbe = c.StartupProbe.withDefaults()
	return c
}

// validateProbes reports the problems of the probe settings (called by
// validate).
func (c Config) validateProbes() []error {
	var errs []error
	for _, p := range []struct {
		flag string
		cfg  ProbeConfig
	}{{"probe", c.Probe}, {"startup-probe", c.StartupProbe}} {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...)))
		}
		if p.cfg.Target != "" {
			if _, err := ParseProbe(p.cfg.Target); err != nil {
				bad("%s: %v", p.flag, err)
			}
		}
		if p.cfg.Interval < time.Millisecond {
			bad("%s-interval %v: want at least 1ms", p.flag, p.cfg.Interval)
		}
		if p.cfg.Timeout <= 0 {
			bad("%s-timeout %v: want a positive duration", p.flag, p.cfg.Timeout)
		}
		if p.cfg.Failures < 1 {
			bad("%s-failures %d: want at least 1", p.flag, p.cfg.Failures)
		}
	}
	if c.ProbeDelay < 0 {
		errs = append(errs, fmt.Errorf("%w: probe-initial-delay %v must not be negative", ErrConfig, c.ProbeDelay))
	}
	return errs
}

// Probe phases, as status and events name them.
const (
	probeStartup  = "startup"
	probeLiveness = "liveness"
)

// probeSet is the probes of one child; the loop owns it, except done and
// the probers, which its goroutine owns.
type probeSet struct {
	cancel  context.CancelFunc
	done    chan struct{} // closed when the goroutine has ended
	startup *probeRun     // nil without a start-up probe
	live    *probeRun     // nil without a liveness probe
	passed  bool          // the start-up probe passed (or there is none)
	// notifyReady: READY=1 came while the start-up probe had not passed.
	notifyReady bool
	// captureEnd is when the last capture of the child ended: a failure
	// of a probe that started before it is not counted.
	captureEnd time.Time
	stalled    bool
}

// probeRun is one probe's settings and record.
type probeRun struct {
	phase    string
	cfg      ProbeConfig
	probe    Probe
	started  bool // it has begun (a liveness probe waits for the start-up probe)
	failures int  // in a row
	total    int
	failed   int
	ignored  int // failures not counted (a capture paused the child)
	last     time.Time
	lastDur  time.Duration
	lastErr  string
	lastOK   time.Time // last pass; the child's start before any
}

// probeMsg is one probe's result, sent by the probe goroutine to the loop.
type probeMsg struct {
	c     *child
	phase string
	at    time.Time
	dur   time.Duration
	err   error
}

// startProbes starts the probes of a child that has just started.
func (s *Supervisor) startProbes(c *child) {
	cfg := s.cfg
	if cfg.Probe.Target == "" && cfg.StartupProbe.Target == "" {
		return
	}
	ps := &probeSet{done: make(chan struct{}), passed: true}
	newRun := func(phase string, pc ProbeConfig) *probeRun {
		p, err := ParseProbe(pc.Target)
		if err != nil {
			return nil // refused by validate
		}
		return &probeRun{phase: phase, cfg: pc, probe: p, lastOK: c.started}
	}
	if cfg.StartupProbe.Target != "" {
		ps.startup = newRun(probeStartup, cfg.StartupProbe)
		ps.passed = ps.startup == nil
	}
	if cfg.Probe.Target != "" {
		ps.live = newRun(probeLiveness, cfg.Probe)
	}
	probers := map[string]*prober{}
	for _, r := range []*probeRun{ps.startup, ps.live} {
		if r == nil {
			continue
		}
		pr := newProber(r.probe, r.cfg.Timeout)
		if r.probe.Kind == ProbeExec {
			pr.env = s.probeEnv(c)
			pr.dir = cfg.Dir
			pr.start = s.spawn.start
		}
		probers[r.phase] = pr
	}
	ctx, cancel := context.WithCancel(context.Background())
	ps.cancel = cancel
	prev := s.probesDone
	s.probesDone = ps.done
	c.probes = ps
	first := ps.startup
	if first == nil {
		first = ps.live
	}
	first.started = true
	startup, live := ps.startup, ps.live
	delay := cfg.ProbeDelay
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(ps.done)
		defer func() {
			for _, pr := range probers {
				pr.close()
			}
		}()
		if prev != nil {
			// Never two probes at once, even across children: the last
			// child's goroutine ends first.
			select {
			case <-prev:
			case <-ctx.Done():
				return
			}
		}
		s.probeLoop(ctx, c, startup, live, probers, delay)
	}()
}

// probeLoop runs on the probe goroutine: the start-up probe until it
// passes, then the liveness probe, until ctx ends.
func (s *Supervisor) probeLoop(ctx context.Context, c *child, startup, live *probeRun, probers map[string]*prober, delay time.Duration) {
	cur := startup
	if cur == nil {
		cur = live
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	for cur != nil {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		t0 := time.Now()
		err := probers[cur.phase].run(ctx)
		dur := time.Since(t0)
		if ctx.Err() != nil {
			return
		}
		select {
		case s.msgs <- probeMsg{c: c, phase: cur.phase, at: t0, dur: dur, err: err}:
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
		interval := cur.cfg.Interval
		if cur == startup && err == nil {
			// The liveness probe starts one of its intervals after the
			// start-up probe passed.
			cur, interval = live, 0
			if live != nil {
				interval = live.cfg.Interval
			}
		}
		t.Reset(max(0, interval-dur))
	}
}

// probeEnv is an exec probe's environment: the supervisor's, without
// what is meant for it alone, the child's extra variables, and the
// service's name and the child's pid.
func (s *Supervisor) probeEnv(c *child) []string {
	var env []string
	for _, kv := range s.sys.environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !supervisorEnv[k] {
			env = append(env, kv)
		}
	}
	env = append(env, s.cfg.Env...)
	return append(env, "MTEV_SERVICE="+s.cfg.Name, "MTEV_PID="+strconv.Itoa(c.pid))
}

// stopProbes ends c's probes (it has ended, or stalled).
func (c *child) stopProbes() {
	if c.probes != nil {
		c.probes.cancel()
	}
}

// probeCaptureEnded notes that a capture of c ended (called by captured).
func (c *child) probeCaptureEnded(at time.Time) {
	if c.probes != nil {
		c.probes.captureEnd = at
	}
}

// probeGatesReady reports whether c's readiness waits for its start-up
// probe, and notes that READY=1 came (called by handleNotify).
func (c *child) probeGatesReady() bool {
	if c.probes == nil || c.probes.passed {
		return false
	}
	c.probes.notifyReady = true
	return true
}

// probed handles a probe's result on the loop.
func (s *Supervisor) probed(m probeMsg) {
	c := m.c
	ps := c.probes
	if c != s.cur || c.planned != planNone || ps == nil || ps.stalled {
		return
	}
	r := ps.live
	if m.phase == probeStartup {
		r = ps.startup
	}
	r.total++
	r.last, r.lastDur = m.at, m.dur
	if m.err == nil {
		prev := r.failures
		r.failures, r.lastErr, r.lastOK = 0, "", m.at.Add(m.dur)
		if r == ps.startup && !ps.passed {
			ps.passed = true
			if ps.live != nil {
				ps.live.started = true
				ps.live.lastOK = r.lastOK
			}
			s.event(ProbePassed{PID: c.pid, Phase: r.phase, Target: r.probe.String(), After: prev})
			if !s.cfg.Notify || ps.notifyReady {
				// Ready now: the start-up probe passed and, for a notify
				// child, READY=1 came before. The one road of readiness.
				s.handleNotify(notifyMsg{pid: c.pid, root: c.pid, fields: []kv{{"READY", "1"}}})
			}
			return
		}
		if prev > 0 {
			s.event(ProbePassed{PID: c.pid, Phase: r.phase, Target: r.probe.String(), After: prev})
		}
		return
	}
	r.failed++
	r.lastErr = m.err.Error()
	if c.capturing || m.at.Before(ps.captureEnd) {
		// A capture paused the child while this probe ran.
		r.ignored++
		s.event(ProbeFailed{PID: c.pid, Phase: r.phase, Target: r.probe.String(), Failures: r.failures, Threshold: r.cfg.Failures, Err: r.lastErr, Ignored: true})
		return
	}
	r.failures++
	s.event(ProbeFailed{PID: c.pid, Phase: r.phase, Target: r.probe.String(), Failures: r.failures, Threshold: r.cfg.Failures, Err: r.lastErr})
	if r.failures < r.cfg.Failures {
		return
	}
	ps.stalled = true
	ps.cancel()
	st := trace.Stall{
		Source:    trace.SourceProbe,
		Stage:     trace.StageHard,
		Name:      r.probe.String(),
		Detail:    r.lastErr,
		Failures:  r.failures,
		AgeMS:     ms(m.at.Add(m.dur).Sub(r.lastOK)),
		TimeoutMS: ms(r.cfg.Interval) * int64(r.cfg.Failures),
	}
	if r == ps.startup {
		st.Source = trace.SourceStartup
	}
	s.stalled(c, st)
}

// ProbeInfo is one probe of the child, as `status` shows it.
type ProbeInfo struct {
	Phase      string `json:"phase"` // "startup" or "liveness"
	Target     string `json:"target"`
	State      string `json:"state"` // "waiting" (not begun), "passing", "failing", "passed" (a start-up probe done), "stalled"
	Failures   int    `json:"failures"`
	Threshold  int    `json:"threshold"`
	IntervalMS int64  `json:"interval_ms"`
	TimeoutMS  int64  `json:"timeout_ms"`
	Probes     int    `json:"probes"`
	Failed     int    `json:"failed"`
	Ignored    int    `json:"ignored,omitempty"`
	LastMS     int64  `json:"last_ms,omitempty"`     // how long the last probe took
	LastAgoMS  int64  `json:"last_ago_ms,omitempty"` // since the last probe started
	LastError  string `json:"last_error,omitempty"`
}

// probeStatus describes c's probes for status.
func (s *Supervisor) probeStatus(c *child) []ProbeInfo {
	if c == nil || c.probes == nil {
		return nil
	}
	ps := c.probes
	var out []ProbeInfo
	for _, r := range []*probeRun{ps.startup, ps.live} {
		if r == nil {
			continue
		}
		pi := ProbeInfo{Phase: r.phase, Target: r.probe.String(), Failures: r.failures, Threshold: r.cfg.Failures,
			IntervalMS: ms(r.cfg.Interval), TimeoutMS: ms(r.cfg.Timeout), Probes: r.total, Failed: r.failed, Ignored: r.ignored, LastError: r.lastErr}
		if !r.last.IsZero() {
			pi.LastMS, pi.LastAgoMS = ms(r.lastDur), ms(time.Since(r.last))
		}
		switch {
		case ps.stalled && r.failures >= r.cfg.Failures:
			pi.State = "stalled"
		case r == ps.startup && ps.passed:
			pi.State = "passed"
		case !r.started || r.total == 0:
			pi.State = "waiting"
		case r.failures > 0:
			pi.State = "failing"
		default:
			pi.State = "passing"
		}
		out = append(out, pi)
	}
	return out
}

// ProbeFailed: a probe of the child failed, Failures times in a row of
// the Threshold that is a stall. Ignored: not counted, because a capture
// paused the child while it ran.
type ProbeFailed struct {
	PID                 int
	Phase               string // "startup" or "liveness"
	Target              string
	Failures, Threshold int
	Err                 string
	Ignored             bool
}

// ProbePassed: the start-up probe passed, or a probe passed again after
// After failures in a row.
type ProbePassed struct {
	PID    int
	Phase  string
	Target string
	After  int
}

func (ProbeFailed) event() {}
func (ProbePassed) event() {}

func (e ProbeFailed) String() string {
	if e.Ignored {
		return fmt.Sprintf("pid %d: %s probe %s failed during a capture (not counted): %s", e.PID, e.Phase, e.Target, e.Err)
	}
	return fmt.Sprintf("pid %d: %s probe %s failed (%d of %d in a row): %s", e.PID, e.Phase, e.Target, e.Failures, e.Threshold, e.Err)
}

func (e ProbePassed) String() string {
	failures := "failures"
	if e.After == 1 {
		failures = "failure"
	}
	if e.Phase == probeStartup {
		return fmt.Sprintf("pid %d: startup probe %s passed (after %d %s)", e.PID, e.Target, e.After, failures)
	}
	return fmt.Sprintf("pid %d: %s probe %s passed again after %d %s", e.PID, e.Phase, e.Target, e.After, failures)
}
