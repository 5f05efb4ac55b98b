package watchdog

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// backoff computes the delay before each restart: exponential from min to
// max with ±20% jitter, back to min after a run of at least reset.
type backoff struct {
	min, max, reset time.Duration
	zero            bool
	failures        int // consecutive short runs
	rand            func() float64
}

func newBackoff(c Config) *backoff {
	return &backoff{min: c.BackoffMin, max: c.BackoffMax, reset: c.BackoffReset, zero: c.ZeroBackoff, rand: rand.Float64}
}

// next returns the delay before the next start, given how long the child
// that just ended ran.
func (b *backoff) next(ran time.Duration) time.Duration {
	if b.zero || b.min == 0 {
		return 0
	}
	if ran >= b.reset {
		b.failures = 0
	}
	d := b.min
	for i := 0; i < b.failures && d < b.max; i++ {
		d *= 2
	}
	b.failures++
	d = min(d, b.max)
	// Jitter spreads restarts of many supervised services apart.
	j := time.Duration(float64(d) * (0.8 + 0.4*b.rand()))
	return min(j, b.max)
}

// crashLoop remembers the times of the last n deaths; the limit is reached
// when all n fell within span.
type crashLoop struct {
	n     int
	span  time.Duration
	times []time.Time
}

func newCrashLoop(n int, span time.Duration) *crashLoop {
	return &crashLoop{n: n, span: span}
}

// record adds a death and reports whether the limit is reached.
func (c *crashLoop) record(t time.Time) bool {
	c.times = append(c.times, t)
	if len(c.times) > c.n {
		c.times = c.times[len(c.times)-c.n:]
	}
	return len(c.times) == c.n && t.Sub(c.times[0]) <= c.span
}

// wouldReach reports whether a death at t would reach the limit, without
// recording it.
func (c *crashLoop) wouldReach(t time.Time) bool {
	if c.n == 1 {
		return true
	}
	if len(c.times) < c.n-1 {
		return false
	}
	first := c.times[len(c.times)-(c.n-1)]
	return t.Sub(first) <= c.span
}

// outcome is what the policy needs to know about an incident.
type outcome struct {
	ending  bool   // a stop was requested or a final error is set
	restart Policy // the configured restart policy
	soft    bool   // a soft stall: the child keeps running
	clean   bool   // the child exited with status 0
	limit   bool   // one more death reaches the crash-loop limit
}

// decide is the one policy function: the action recorded for an incident
// (and then taken). Exits, crashes and hard stalls of every source go
// through it, so a hard stall that reaches the crash-loop limit is
// recorded as give-up, like a crash.
func decide(o outcome) trace.Action {
	switch {
	case o.soft:
		return trace.ActionKeepRunning
	case o.ending:
		return trace.ActionStop
	case o.restart == RestartNever, o.restart == RestartOnFailure && o.clean:
		return trace.ActionStop
	case o.limit:
		return trace.ActionGiveUp
	}
	return trace.ActionRestart
}

// actionFor predicts what afterDeath will do, for the record.
func (s *Supervisor) actionFor(clean bool) trace.Action {
	return decide(outcome{ending: s.ending, restart: s.cfg.Restart, clean: clean, limit: s.loop.wouldReach(s.clock.Now())})
}

// afterDeath applies the restart policy to a child that ended on its own
// (or was killed for a stall) and schedules the next start.
func (s *Supervisor) afterDeath(uptime time.Duration, clean bool) {
	if s.ending {
		return
	}
	switch {
	case s.cfg.Restart == RestartNever:
		s.ending = true
		if !clean && s.lastExit != nil {
			s.final = &ChildExitError{Exit: *s.lastExit}
		}
		return
	case s.cfg.Restart == RestartOnFailure && clean:
		s.ending = true
		return
	}
	if s.loop.record(s.clock.Now()) {
		s.event(GaveUp{Deaths: s.cfg.Retries, Span: s.cfg.Span})
		s.ending = true
		s.final = fmt.Errorf("%w: %d deaths within %v", ErrCrashLoop, s.cfg.Retries, s.cfg.Span)
		return
	}
	d := s.backoff.next(uptime)
	s.nextAt = s.clock.Now().Add(d)
	s.event(RestartScheduled{Delay: d})
}
