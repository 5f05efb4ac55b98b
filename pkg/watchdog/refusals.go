package watchdog

import (
	"sync"
	"time"
)

// refusals rate-limits the warnings about refused senders (notify
// datagrams, control connections): one line per sender per interval, and
// the next line says how many were suppressed in between. A flood from
// many senders is bounded too: past maxSenders, senders share one entry.
type refusals struct {
	mu       sync.Mutex
	interval time.Duration
	now      func() time.Time
	per      map[int]*refusal
}

type refusal struct {
	last       time.Time
	suppressed int
}

const (
	refusalInterval = 10 * time.Second
	maxSenders      = 256
	otherSenders    = -1 // the shared entry once maxSenders are tracked
)

func newRefusals(interval time.Duration, now func() time.Time) *refusals {
	if now == nil {
		now = time.Now
	}
	return &refusals{interval: interval, now: now, per: map[int]*refusal{}}
}

// allow reports whether a refusal of sender is to be logged now, and how
// many refusals of it were suppressed since the last line. It is safe for
// concurrent use.
func (r *refusals) allow(sender int) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	e := r.per[sender]
	if e == nil {
		if len(r.per) >= maxSenders {
			for k, v := range r.per {
				if now.Sub(v.last) >= r.interval && v.suppressed == 0 {
					delete(r.per, k)
				}
			}
		}
		if len(r.per) >= maxSenders {
			sender = otherSenders
			e = r.per[sender]
		}
		if e == nil {
			r.per[sender] = &refusal{last: now}
			return true, 0
		}
	}
	if now.Sub(e.last) < r.interval {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return true, n
}
