package eventer

import (
	"container/heap"
	"fmt"
	"sync/atomic"
	"time"
)

// Timer is a one-shot or periodic timer on a loop. Stop cancels it from any
// goroutine.
type Timer struct {
	loop   *Loop
	cb     *callback
	fn     func()
	when   int64 // mono()
	period time.Duration
	index  int // in the heap; -1 when out of it; loop-owned
	dead   atomic.Bool
	fires  atomic.Uint64
}

// Stop cancels the timer. It reports whether this call stopped it before it
// expired (for a periodic timer: whether it was still running). A callback
// already running is not interrupted.
func (t *Timer) Stop() bool {
	if !t.dead.CompareAndSwap(false, true) {
		return false
	}
	// Remove it from the heap promptly so that a long timer does not linger.
	_ = t.loop.post(posted{fn: func() {
		if t.index >= 0 {
			heap.Remove(&t.loop.timers, t.index)
		}
	}, internal: true})
	return true
}

// Fires returns how many times the timer's callback has run.
func (t *Timer) Fires() uint64 { return t.fires.Load() }

// AfterFunc runs fn on the loop once, d from now. name labels its latency
// histogram and its line in snapshots.
func (l *Loop) AfterFunc(name string, d time.Duration, fn func()) (*Timer, error) {
	return l.addTimer(name, d, 0, fn)
}

// Every runs fn on the loop every period, the first time one period from now,
// until the timer is stopped. A late loop skips missed periods rather than
// running the callback back to back.
func (l *Loop) Every(name string, period time.Duration, fn func()) (*Timer, error) {
	if period <= 0 {
		return nil, fmt.Errorf("eventer: every %q: period %v: %w", name, period, ErrInvalid)
	}
	return l.addTimer(name, period, period, fn)
}

func (l *Loop) addTimer(name string, d, period time.Duration, fn func()) (*Timer, error) {
	t := &Timer{loop: l, cb: l.pool.callback(name), fn: fn, when: mono() + int64(d), period: period, index: -1}
	err := l.post(posted{fn: func() {
		if !t.dead.Load() {
			heap.Push(&l.timers, t)
		}
	}, internal: true})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// runTimers fires the timers that are due and returns the time it used.
func (l *Loop) runTimers() int64 {
	now := mono()
	for len(l.timers) > 0 {
		t := l.timers[0]
		if t.when > now {
			break
		}
		if t.dead.Load() {
			heap.Pop(&l.timers)
			continue
		}
		if t.period > 0 {
			t.when += int64(t.period)
			if t.when <= now {
				t.when = now + int64(t.period)
			}
			heap.Fix(&l.timers, 0)
		} else {
			heap.Pop(&l.timers)
			t.dead.Store(true)
		}
		t.fires.Add(1)
		l.call(t.cb, t.fn)
		now = mono()
	}
	return now
}

func (l *Loop) nextTimer() (int64, bool) {
	if len(l.timers) == 0 {
		return 0, false
	}
	return l.timers[0].when, true
}

type timerHeap []*Timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when < h[j].when }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*Timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
