package trace

import "sort"

// GuessCulprit picks the goroutine most likely to explain a hang when
// nothing names it (no heart thread, no label, no panic), and returns its
// index, or -1 for an empty list. In order of preference:
//
//  1. a goroutine running the program's own code (a spin that never
//     yields, which starves everything else);
//  2. a goroutine of the program's own code waiting for a lock
//     (sync.Mutex, sync.RWMutex): the usual deadlock;
//  3. goroutine 1, the main goroutine, when it is blocked in the program's
//     own code (a channel, a select, a system call);
//  4. the goroutine of the program's own code that has waited longest.
//
// Ties are broken by the culprit frame's function name, not by goroutine
// id, so that the same hang picks the same goroutine in every run and its
// fingerprint stays the same.
func GuessCulprit(gs []Goroutine) int {
	own := func(g *Goroutine) (Frame, bool) {
		f, ok := CulpritFrame(g)
		return f, ok && !isStdlibFunc(f.Function)
	}
	pick := func(match func(g *Goroutine) bool) int {
		best, bestName := -1, ""
		for i := range gs {
			f, ok := own(&gs[i])
			if !ok || !match(&gs[i]) {
				continue
			}
			if best < 0 || f.Function < bestName {
				best, bestName = i, f.Function
			}
		}
		return best
	}
	if i := pick(func(g *Goroutine) bool { return g.State == "running" }); i >= 0 {
		return i
	}
	if i := pick(func(g *Goroutine) bool {
		switch g.WaitReason {
		case "sync.Mutex.Lock", "sync.RWMutex.Lock", "sync.RWMutex.RLock":
			return true
		}
		return false
	}); i >= 0 {
		return i
	}
	if i := pick(func(g *Goroutine) bool { return g.ID == 1 }); i >= 0 {
		return i
	}
	idx := make([]int, 0, len(gs))
	for i := range gs {
		if _, ok := own(&gs[i]); ok {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		if len(gs) == 0 {
			return -1
		}
		return 0
	}
	sort.SliceStable(idx, func(a, b int) bool { return gs[idx[a]].WaitMS > gs[idx[b]].WaitMS })
	return idx[0]
}
