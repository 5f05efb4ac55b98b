package capture

import (
	"strings"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// MaxGoroutines bounds the goroutines stored in one record. The culprit
// is always kept; GoroutinesOmitted says how many were left out.
const MaxGoroutines = 5000

// Store stores gs in rec, with one culprit marked and the list bounded
// for storage: every method (dump, Delve live, Delve core, crash output,
// core file) stores its goroutines through it.
//
// The culprit is, for a stall: the goroutine on the stalled heart's
// thread; else the one carrying every pprof label the child reported;
// else the one labelled with the heart's name. Otherwise the one a parser
// or Delve marked (the goroutine that panicked, a running one); else
// trace.GuessCulprit's choice.
func Store(rec *trace.Record, gs []trace.Goroutine) {
	markCulprit(gs, rec.Stall)
	if culpritIndex(gs) < 0 {
		if i := guess(gs); i >= 0 {
			gs[i].Culprit = true
		}
	}
	rec.Goroutines = bound(gs, culpritIndex(gs), &rec.GoroutinesOmitted)
}

// markCulprit marks the goroutine a stall names, if it names one.
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
		for i := range gs {
			if hasLabels(gs[i].Labels, st.Labels) {
				gs[i].Culprit = true
				return
			}
		}
	}
	if st.Heart != "" {
		// The eventer labels every loop goroutine with its name, which is
		// its heart's name.
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

// dumpServer is the package whose goroutine writes a cooperative dump:
// it runs while the dump is taken, and is never the culprit.
const dumpServer = "github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump."

// guess is trace.GuessCulprit's choice among the goroutines that are not
// writing the dump itself (a stall with no heart and no labels to name
// its goroutine, a probe's, would otherwise blame the one running goroutine
// of a cooperative dump: the dumper).
func guess(gs []trace.Goroutine) int {
	idx := make([]int, 0, len(gs))
	cand := make([]trace.Goroutine, 0, len(gs))
	for i := range gs {
		if !inPackage(&gs[i], dumpServer) {
			idx = append(idx, i)
			cand = append(cand, gs[i])
		}
	}
	if j := trace.GuessCulprit(cand); j >= 0 {
		return idx[j]
	}
	return trace.GuessCulprit(gs)
}

func inPackage(g *trace.Goroutine, prefix string) bool {
	for _, f := range g.Frames {
		if strings.HasPrefix(f.Function, prefix) {
			return true
		}
	}
	return false
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

func culpritIndex(gs []trace.Goroutine) int {
	for i := range gs {
		if gs[i].Culprit {
			return i
		}
	}
	return -1
}

// bound keeps at most MaxGoroutines of gs, the culprit first among them.
func bound(gs []trace.Goroutine, culprit int, omitted *int) []trace.Goroutine {
	if len(gs) <= MaxGoroutines {
		return gs
	}
	out := make([]trace.Goroutine, 0, MaxGoroutines)
	if culprit >= 0 && culprit < len(gs) {
		out = append(out, gs[culprit])
	}
	for i := range gs {
		if len(out) == MaxGoroutines {
			break
		}
		if i != culprit {
			out = append(out, gs[i])
		}
	}
	*omitted = len(gs) - len(out)
	return out
}

// StoreBlameless stores gs in rec with no culprit (a process killed by a
// signal another process sent: no goroutine of its own is to blame),
// bounded as Store bounds it.
func StoreBlameless(rec *trace.Record, gs []trace.Goroutine) {
	for i := range gs {
		gs[i].Culprit = false
	}
	rec.Goroutines = bound(gs, -1, &rec.GoroutinesOmitted)
}
