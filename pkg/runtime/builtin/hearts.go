package builtin

import (
	"os"
	"sort"
	"sync"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/hearts"
)

// TableHearts lists, by name, the hearts of the heart table this process shares with
// its supervisor. Ages are measured as the supervisor measures them, by
// watching each ticker change: the first listing shows every age as 0, and
// later ones the time since the ticker last changed between listings.
func TableHearts(t *hearts.Table, ev *eventer.System) func() []Heart {
	var mu sync.Mutex
	m := hearts.NewMonitor(t, hearts.MonitorConfig{})
	loops := loopNames(ev)
	return func() []Heart {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		m.Check(now)
		var out []Heart
		for _, st := range m.Hearts(now) {
			h := Heart{
				Name: st.Name, Slot: st.Slot, ThreadID: st.ThreadID,
				TimeoutMS: st.Timeout.Milliseconds(), AgeMS: st.Age.Milliseconds(), State: st.State.String(),
			}
			if loops[st.Name] {
				h.Loop = st.Name
			}
			out = append(out, h)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return out
	}
}

// LoopHearts lists the eventer's loops as hearts when no supervisor shares
// a heart table: the age is how long the loop has been in its current
// callback (a loop between callbacks beats at least every 200 ms).
func LoopHearts(ev *eventer.System) func() []Heart {
	return func() []Heart {
		var out []Heart
		for _, p := range ev.Snapshot().Pools {
			for _, l := range p.Loops {
				h := Heart{Name: l.Name, Loop: l.Name, Slot: -1, ThreadID: l.ThreadID, TimeoutMS: p.Timeout.Milliseconds(), State: "on"}
				if l.Running != nil {
					h.AgeMS = l.Running.For.Milliseconds()
				}
				out = append(out, h)
			}
		}
		return out
	}
}

func loopNames(ev *eventer.System) map[string]bool {
	m := map[string]bool{}
	if ev == nil {
		return m
	}
	for _, p := range ev.Pools() {
		for _, l := range p.Loops() {
			m[l.Name()] = true
		}
	}
	return m
}

func pid() int { return os.Getpid() }
