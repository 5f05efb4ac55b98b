package hearts

import (
	"fmt"
	"time"
)

// Defaults for MonitorConfig fields left zero.
const (
	DefaultTimeout = 5 * time.Second  // libmtev's default heart timeout
	DefaultGrace   = 2 * time.Second  // libmtev's escalation delay
	DefaultStartup = 30 * time.Second // start-up deadline
)

// Poll interval bounds; see doc.go.
const (
	MinPollInterval = time.Millisecond
	MaxPollInterval = 77 * time.Millisecond
	// IdlePollInterval is the poll interval while no heart is in use.
	IdlePollInterval = time.Second
	pollDivisor      = 20
)

// MonitorConfig sets a Monitor's deadlines. Zero fields take the defaults
// above.
type MonitorConfig struct {
	// DefaultTimeout applies to hearts created with a timeout of 0.
	DefaultTimeout time.Duration
	// Grace is the time past the soft deadline (the heart's timeout) at
	// which the hard deadline falls. A negative value puts the hard deadline
	// at the timeout itself.
	Grace time.Duration
	// NoSoft suppresses soft stall events.
	NoSoft bool
	// Startup is the start-up deadline: the longest a heart may go without
	// its first beat (or its timeout, if longer), and the longest the child
	// may go without a heart (RequireHeart) or readiness (RequireReady),
	// counted from the start of the child.
	Startup time.Duration
	// RequireHeart reports a child that has created no heart by the
	// start-up deadline.
	RequireHeart bool
	// RequireReady reports a child that has not called Ready by the
	// start-up deadline.
	RequireReady bool
}

func (c MonitorConfig) withDefaults() MonitorConfig {
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = DefaultTimeout
	}
	switch {
	case c.Grace == 0:
		c.Grace = DefaultGrace
	case c.Grace < 0:
		c.Grace = 0
	}
	if c.Startup <= 0 {
		c.Startup = DefaultStartup
	}
	return c
}

// Kind is the kind of a stall Event.
type Kind uint8

// Event kinds.
const (
	// SoftStall: a heart passed its timeout. Capture, keep the child running.
	SoftStall Kind = iota + 1
	// HardStall: a heart passed its timeout plus the grace. Capture, kill,
	// restart.
	HardStall
	// StartupStall: a heart never beat, or the child created no heart or
	// did not declare readiness, by the start-up deadline. Capture, kill,
	// restart.
	StartupStall
)

func (k Kind) String() string {
	switch k {
	case SoftStall:
		return "soft stall"
	case HardStall:
		return "hard stall"
	case StartupStall:
		return "startup stall"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Event reports a passed deadline.
type Event struct {
	Kind Kind
	// Slot is the heart's slot, or -1 for a child-wide start-up stall
	// (Name is then "no heart" or "not ready").
	Slot     int
	Name     string
	ThreadID int
	// Age is the time since the parent last saw the heart's ticker change
	// (or first saw the heart, or the child start).
	Age time.Duration
	// Timeout is the heart's effective timeout.
	Timeout time.Duration
	// Deadline is the age limit that was passed.
	Deadline time.Duration
}

func (e Event) String() string {
	if e.Slot < 0 {
		return fmt.Sprintf("%v: child: %s after %v (deadline %v)", e.Kind, e.Name, e.Age, e.Deadline)
	}
	return fmt.Sprintf("%v: heart#%d %q tid %d: no beat for %v (deadline %v, timeout %v)",
		e.Kind, e.Slot, e.Name, e.ThreadID, e.Age, e.Deadline, e.Timeout)
}

// State is a heart's state as the parent sees it.
type State uint8

// Heart states.
const (
	Free State = iota
	On
	Disabled
)

func (s State) String() string {
	switch s {
	case On:
		return "on"
	case Disabled:
		return "disabled"
	}
	return "free"
}

// Status describes one heart for status displays.
type Status struct {
	Slot     int
	Name     string
	ThreadID int
	State    State
	Timeout  time.Duration // effective
	Ticker   uint64
	Age      time.Duration // since the last change the monitor saw
	Beaten   bool          // the monitor has seen it beat
}

// view is the parent's memory of one slot.
type view struct {
	valid   bool
	gen     uint32
	ticker  uint64
	changed time.Time
	beaten  bool
	soft    bool // fired in this stall episode
	hard    bool
	startup bool
}

// snap is one consistent read of a slot.
type snap struct {
	state   uint32
	gen     uint32
	ticker  uint64
	timeout time.Duration
	tid     int
	name    string
}

// read reads slot i; ok is false while the child is rewriting it.
func (t *Table) read(i int) (sn snap, ok bool) {
	s := t.slot(i)
	g1 := s.gen.Load()
	sn.state = s.state.Load()
	if g1%2 == 1 || (sn.state != stateOn && sn.state != stateDisabled) {
		return sn, false
	}
	sn.ticker = s.ticker.Load()
	sn.timeout = time.Duration(s.timeout.Load())
	sn.tid = int(s.tid.Load())
	sn.name = loadName(s)
	if s.gen.Load() != g1 {
		return sn, false
	}
	sn.gen = g1
	return sn, true
}

// Monitor is the parent's view of a table: it remembers when each heart
// last changed and turns passed deadlines into Events. It owns no goroutine
// and is not safe for concurrent use: the supervisor's loop owns it and
// calls Check every PollInterval.
type Monitor struct {
	t   *Table
	cfg MonitorConfig

	started   bool
	start     time.Time // child start, for the child-wide deadline
	starts    uint64
	views     []view
	anyHeart  bool
	childDone bool // child-wide start-up stall reported
	poll      time.Duration
}

// NewMonitor returns a monitor of t.
func NewMonitor(t *Table, cfg MonitorConfig) *Monitor {
	m := &Monitor{t: t, cfg: cfg.withDefaults(), views: make([]view, t.Slots())}
	m.poll = pollFor(m.cfg.DefaultTimeout)
	return m
}

// Config returns the configuration in effect, defaults filled in.
func (m *Monitor) Config() MonitorConfig { return m.cfg }

// Reset forgets every heart and starts the child-wide start-up deadline at
// now. Call it when a child is started. Check also resets on its own after
// the table's Reset, and starts the deadline at its first call if Reset was
// never called. A monitor of a closed table reports nothing.
func (m *Monitor) Reset(now time.Time) {
	m.started = true
	m.start = now
	m.starts = m.t.resets.Load()
	clear(m.views)
	m.anyHeart = false
	m.childDone = false
}

// PollInterval is how often Check should be called: the smallest timeout of
// the hearts seen at the last Check (the default timeout before any Check)
// divided by 20, clamped to [MinPollInterval, MaxPollInterval]; or
// IdlePollInterval when the last Check saw no heart in use, so that an idle
// child whose program never creates hearts costs its supervisor almost
// nothing. A heart is then seen at most IdlePollInterval after its
// creation.
func (m *Monitor) PollInterval() time.Duration { return m.poll }

func pollFor(timeout time.Duration) time.Duration {
	return min(max(timeout/pollDivisor, MinPollInterval), MaxPollInterval)
}

func (m *Monitor) timeout(d time.Duration) time.Duration {
	if d <= 0 {
		return m.cfg.DefaultTimeout
	}
	return d
}

// Check reads the table at time now and returns the deadlines passed since
// the last call. Each kind of event fires once per stall episode of a heart;
// a beat (or a disable) ends the episode and re-arms it.
func (m *Monitor) Check(now time.Time) []Event {
	if m.t.closed.Load() {
		return nil
	}
	if !m.started || m.t.resets.Load() != m.starts {
		m.Reset(now)
	}
	var evs []Event
	if m.t.AllDisabled() {
		// Suspended: every deadline restarts when the child enables again.
		m.start = now
		for i := range m.views {
			if v := &m.views[i]; v.valid {
				*v = view{valid: true, gen: v.gen, ticker: v.ticker, changed: now, beaten: v.beaten}
			}
		}
		return nil
	}
	smallest := time.Duration(0)
	for i := range m.views {
		v := &m.views[i]
		sn, ok := m.t.read(i)
		if !ok {
			if sn.state == stateFree {
				*v = view{}
			}
			continue
		}
		m.anyHeart = true
		if !v.valid || v.gen != sn.gen {
			*v = view{valid: true, gen: sn.gen, ticker: sn.ticker, changed: now, beaten: sn.ticker != 0}
		}
		if sn.state == stateDisabled {
			*v = view{valid: true, gen: sn.gen, ticker: sn.ticker, changed: now, beaten: v.beaten}
			continue
		}
		timeout := m.timeout(sn.timeout)
		if smallest == 0 || timeout < smallest {
			smallest = timeout
		}
		if sn.ticker != v.ticker {
			*v = view{valid: true, gen: sn.gen, ticker: sn.ticker, changed: now, beaten: true}
			continue
		}
		age := now.Sub(v.changed)
		ev := Event{Slot: i, Name: sn.name, ThreadID: sn.tid, Age: age, Timeout: timeout}
		if !v.beaten {
			if d := max(m.cfg.Startup, timeout); age > d && !v.startup {
				v.startup = true
				ev.Kind, ev.Deadline = StartupStall, d
				evs = append(evs, ev)
			}
			continue
		}
		if age > timeout && !v.soft && !m.cfg.NoSoft {
			v.soft = true
			ev.Kind, ev.Deadline = SoftStall, timeout
			evs = append(evs, ev)
		}
		if d := timeout + m.cfg.Grace; age > d && !v.hard {
			v.hard = true
			ev.Kind, ev.Deadline = HardStall, d
			evs = append(evs, ev)
		}
	}
	if smallest == 0 {
		// No heart in use: nothing can stall but the child-wide start-up
		// deadline, which is far longer; poll slowly until one appears.
		m.poll = IdlePollInterval
	} else {
		m.poll = pollFor(smallest)
	}
	if age := now.Sub(m.start); !m.childDone && age > m.cfg.Startup {
		m.childDone = true // decided once, at the first check past the deadline
		ev := Event{Kind: StartupStall, Slot: -1, Age: age, Deadline: m.cfg.Startup}
		switch {
		case m.cfg.RequireHeart && !m.anyHeart:
			ev.Name = "no heart"
		case m.cfg.RequireReady && !m.t.IsReady():
			ev.Name = "not ready"
		}
		if ev.Name != "" {
			evs = append(evs, ev)
		}
	}
	return evs
}

// Hearts returns the status of every heart in use, read now, with ages
// measured against the monitor's memory at its last Check.
func (m *Monitor) Hearts(now time.Time) []Status {
	var out []Status
	if m.t.closed.Load() {
		return nil
	}
	for i := range m.views {
		sn, ok := m.t.read(i)
		if !ok {
			continue
		}
		st := Status{
			Slot: i, Name: sn.name, ThreadID: sn.tid, State: On,
			Timeout: m.timeout(sn.timeout), Ticker: sn.ticker,
		}
		if sn.state == stateDisabled {
			st.State = Disabled
		}
		if v := m.views[i]; v.valid && v.gen == sn.gen {
			st.Age = now.Sub(v.changed)
			st.Beaten = v.beaten
		}
		out = append(out, st)
	}
	return out
}
