package hearts

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// clock is a manual clock for the monitor.
type clock struct{ now time.Time }

func (c *clock) advance(d time.Duration) time.Time {
	c.now = c.now.Add(d)
	return c.now
}

func kinds(evs []Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, fmt.Sprintf("%v %s", e.Kind, e.Name))
	}
	return strings.Join(s, ", ")
}

// step is one check of the monitor after the child did something.
type step struct {
	child func(hs map[string]*Heart, tbl *Table)
	after time.Duration // clock advance before the check
	want  string        // kinds(events)
}

func beat(names ...string) func(map[string]*Heart, *Table) {
	return func(hs map[string]*Heart, _ *Table) {
		for _, n := range names {
			hs[n].Beat()
		}
	}
}

func TestMonitorDeadlines(t *testing.T) {
	ms := time.Millisecond
	cfg := MonitorConfig{DefaultTimeout: 100 * ms, Grace: 50 * ms, Startup: 300 * ms}
	tests := []struct {
		name   string
		cfg    MonitorConfig
		hearts map[string]time.Duration
		steps  []step
	}{
		{
			name:   "soft once then hard, re-armed by a beat",
			cfg:    cfg,
			hearts: map[string]time.Duration{"a": 0},
			steps: []step{
				{beat("a"), 0, ""},
				{nil, 100 * ms, ""}, // age == timeout is not past it
				{nil, 1 * ms, "soft stall a"},
				{nil, 20 * ms, ""},
				{nil, 29 * ms, ""},
				{nil, 1 * ms, "hard stall a"},
				{nil, time.Second, ""},
				{beat("a"), 0, ""},
				{nil, 101 * ms, "soft stall a"},
			},
		},
		{
			name:   "late poll fires soft and hard together",
			cfg:    cfg,
			hearts: map[string]time.Duration{"a": 0},
			steps: []step{
				{beat("a"), 0, ""},
				{nil, time.Second, "soft stall a, hard stall a"},
			},
		},
		{
			name:   "own timeout overrides the default",
			cfg:    cfg,
			hearts: map[string]time.Duration{"slow": time.Second, "fast": 0},
			steps: []step{
				{beat("slow", "fast"), 0, ""},
				{beat("slow"), 101 * ms, "soft stall fast"},
				{nil, 900 * ms, "hard stall fast"},
				{nil, 101 * ms, "soft stall slow"},
			},
		},
		{
			name:   "soft disabled",
			cfg:    MonitorConfig{DefaultTimeout: 100 * ms, Grace: 50 * ms, NoSoft: true},
			hearts: map[string]time.Duration{"a": 0},
			steps: []step{
				{beat("a"), 0, ""},
				{nil, 101 * ms, ""},
				{nil, 50 * ms, "hard stall a"},
			},
		},
		{
			name:   "negative grace puts hard at the timeout",
			cfg:    MonitorConfig{DefaultTimeout: 100 * ms, Grace: -1},
			hearts: map[string]time.Duration{"a": 0},
			steps: []step{
				{beat("a"), 0, ""},
				{nil, 101 * ms, "soft stall a, hard stall a"},
			},
		},
		{
			name:   "never beaten: start-up deadline only",
			cfg:    cfg,
			hearts: map[string]time.Duration{"lazy": 0, "busy": 0},
			steps: []step{
				{beat("busy"), 0, ""},
				{beat("busy"), 200 * ms, ""},
				{beat("busy"), 100 * ms, ""},
				{beat("busy"), 1 * ms, "startup stall lazy"},
				{beat("busy"), time.Second, ""},
			},
		},
		{
			name:   "never beaten with a timeout longer than start-up",
			cfg:    cfg,
			hearts: map[string]time.Duration{"lazy": time.Second},
			steps: []step{
				{nil, 0, ""},
				{nil, 500 * ms, ""},
				{nil, 501 * ms, "startup stall lazy"},
			},
		},
		{
			name:   "disabled heart is not reported and restarts on enable",
			cfg:    cfg,
			hearts: map[string]time.Duration{"a": 0},
			steps: []step{
				{beat("a"), 0, ""},
				{func(hs map[string]*Heart, _ *Table) { hs["a"].Disable() }, 10 * ms, ""},
				{nil, time.Minute, ""},
				{func(hs map[string]*Heart, _ *Table) { hs["a"].Enable() }, 0, ""},
				{nil, 100 * ms, ""},
				{nil, 1 * ms, "soft stall a"},
			},
		},
		{
			name:   "disable all suspends everything",
			cfg:    MonitorConfig{DefaultTimeout: 100 * ms, Grace: 50 * ms, Startup: 300 * ms, RequireReady: true},
			hearts: map[string]time.Duration{"a": 0, "lazy": 0},
			steps: []step{
				{func(hs map[string]*Heart, tbl *Table) { hs["a"].Beat(); tbl.DisableAll() }, 0, ""},
				{nil, time.Minute, ""},
				{func(_ map[string]*Heart, tbl *Table) { tbl.EnableAll() }, 0, ""},
				{nil, 101 * ms, "soft stall a"},
				{nil, 200 * ms, "hard stall a, startup stall lazy, startup stall not ready"},
			},
		},
		{
			name:   "child without a heart",
			cfg:    MonitorConfig{Startup: 300 * ms, RequireHeart: true},
			hearts: nil,
			steps: []step{
				{nil, 0, ""},
				{nil, 300 * ms, ""},
				{nil, 1 * ms, "startup stall no heart"},
				{nil, time.Minute, ""},
			},
		},
		{
			name:   "ready child",
			cfg:    MonitorConfig{Startup: 300 * ms, RequireReady: true, RequireHeart: true},
			hearts: map[string]time.Duration{"a": time.Hour},
			steps: []step{
				{beat("a"), 0, ""},
				{func(_ map[string]*Heart, tbl *Table) { tbl.Ready() }, 200 * ms, ""},
				{beat("a"), time.Second, ""},
			},
		},
		{
			name:   "released slot is forgotten, a new heart in it starts fresh",
			cfg:    cfg,
			hearts: map[string]time.Duration{"a": 0},
			steps: []step{
				{beat("a"), 0, ""},
				{nil, 90 * ms, ""},
				{func(hs map[string]*Heart, tbl *Table) {
					hs["a"].Release()
					h, err := tbl.NewHeart("b", 0)
					if err != nil {
						panic(err)
					}
					hs["b"] = h
					h.Beat()
				}, 0, ""},
				{nil, 90 * ms, ""},
				{nil, 11 * ms, "soft stall b"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl, _ := newTestTable(t, 8)
			hs := map[string]*Heart{}
			for name, to := range tt.hearts {
				h, err := tbl.NewHeart(name, to)
				if err != nil {
					t.Fatal(err)
				}
				hs[name] = h
			}
			c := &clock{now: time.Unix(1000, 0)}
			m := NewMonitor(tbl, tt.cfg)
			m.Reset(c.now)
			for i, st := range tt.steps {
				if st.child != nil {
					st.child(hs, tbl)
				}
				evs := m.Check(c.advance(st.after))
				// Sort by slot order is by creation; compare as a set of strings.
				if got := kinds(sortEvents(evs)); got != st.want {
					t.Fatalf("step %d: events %q, want %q", i, got, st.want)
				}
			}
		})
	}
}

// sortEvents orders events by kind then name so table expectations do not
// depend on slot order.
func sortEvents(evs []Event) []Event {
	out := append([]Event(nil), evs...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			a, b := out[i], out[j]
			if b.Kind < a.Kind || b.Kind == a.Kind && b.Name < a.Name {
				out[i], out[j] = b, a
			}
		}
	}
	return out
}

func TestMonitorEventFields(t *testing.T) {
	tbl, _ := newTestTable(t, 4)
	if _, err := tbl.NewHeart("pad", time.Hour); err != nil {
		t.Fatal(err)
	}
	h, err := tbl.NewHeart("e:default/1", 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	tbl.slot(h.Slot()).tid.Store(4242)
	c := &clock{now: time.Unix(0, 0)}
	m := NewMonitor(tbl, MonitorConfig{Grace: time.Second})
	h.Beat()
	m.Check(c.now)
	evs := m.Check(c.advance(250 * time.Millisecond))
	if len(evs) != 1 {
		t.Fatalf("events %v", evs)
	}
	want := Event{Kind: SoftStall, Slot: 1, Name: "e:default/1", ThreadID: 4242,
		Age: 250 * time.Millisecond, Timeout: 200 * time.Millisecond, Deadline: 200 * time.Millisecond}
	if evs[0] != want {
		t.Fatalf("event %+v, want %+v", evs[0], want)
	}
	if s := evs[0].String(); !strings.Contains(s, `heart#1 "e:default/1" tid 4242`) {
		t.Fatalf("event string %q", s)
	}
	st := m.Hearts(c.now)
	if len(st) != 2 || st[1].Name != "e:default/1" || st[1].Age != 250*time.Millisecond || !st[1].Beaten ||
		st[0].Beaten || st[1].State != On || st[1].ThreadID != 4242 || st[1].Ticker != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestMonitorRestartResets(t *testing.T) {
	tbl, _ := newTestTable(t, 4)
	c := &clock{now: time.Unix(0, 0)}
	m := NewMonitor(tbl, MonitorConfig{DefaultTimeout: 100 * time.Millisecond, Startup: time.Second, RequireHeart: true})
	m.Check(c.now)
	if evs := m.Check(c.advance(2 * time.Second)); kinds(evs) != "startup stall no heart" {
		t.Fatalf("first child: %q", kinds(evs))
	}
	// The parent resets the table for the next child; the monitor notices.
	if err := tbl.Reset(); err != nil {
		t.Fatal(err)
	}
	if evs := m.Check(c.advance(time.Second)); len(evs) != 0 {
		t.Fatalf("right after restart: %q", kinds(evs))
	}
	if evs := m.Check(c.advance(time.Second + 1)); kinds(evs) != "startup stall no heart" {
		t.Fatalf("second child: %q", kinds(evs))
	}
}

func TestPollInterval(t *testing.T) {
	tests := []struct {
		def    time.Duration
		hearts []time.Duration
		want   time.Duration
	}{
		{0, nil, IdlePollInterval},                                         // no heart in use: idle
		{100 * time.Millisecond, nil, IdlePollInterval},                    // still idle: no heart
		{0, []time.Duration{0}, MaxPollInterval},                           // 5 s default: libmtev's 77 ms
		{100 * time.Millisecond, []time.Duration{0}, 5 * time.Millisecond}, // default timeout / 20
		{time.Second, []time.Duration{100 * time.Millisecond, 0}, 5 * time.Millisecond},
		{time.Second, []time.Duration{10 * time.Millisecond}, MinPollInterval},
		{time.Hour, []time.Duration{0, 2 * time.Second}, MaxPollInterval},
		{time.Second, []time.Duration{600 * time.Millisecond}, 30 * time.Millisecond},
	}
	for _, tt := range tests {
		tbl, _ := newTestTable(t, 4)
		for i, to := range tt.hearts {
			if _, err := tbl.NewHeart(fmt.Sprint(i), to); err != nil {
				t.Fatal(err)
			}
		}
		m := NewMonitor(tbl, MonitorConfig{DefaultTimeout: tt.def})
		m.Check(time.Unix(0, 0))
		if got := m.PollInterval(); got != tt.want {
			t.Errorf("default %v hearts %v: poll %v, want %v", tt.def, tt.hearts, got, tt.want)
		}
	}
}

func TestMonitorIgnoresChildStartCount(t *testing.T) {
	// The start count in shared memory is the child's to read, not the
	// parent's to trust: changing it must not reset the monitor's memory.
	tbl, _ := newTestTable(t, 4)
	h, err := tbl.NewHeart("a", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Unix(0, 0)}
	m := NewMonitor(tbl, MonitorConfig{})
	h.Beat()
	m.Check(c.now)
	tbl.hdr.starts.Store(77)
	if evs := m.Check(c.advance(101 * time.Millisecond)); kinds(evs) != "soft stall a" {
		t.Fatalf("events %q after the child changed the start count", kinds(evs))
	}
	if err := tbl.Close(); err != nil {
		t.Fatal(err)
	}
	if evs, st := m.Check(c.advance(time.Hour)), m.Hearts(c.now); evs != nil || st != nil {
		t.Fatalf("closed table: events %v, hearts %v", evs, st)
	}
}
