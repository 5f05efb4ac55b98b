package watchdog

import (
	"fmt"
	"slices"
)

// Reconfigure applies a new configuration to a running supervisor: the
// restart policy, backoff, crash-loop limit, stop signal and timeout and
// log tail take effect at once (the backoff and crash-loop history is
// kept); the command, its environment and working directory from the next
// start. Settings that shape the supervisor itself (name, state directory,
// notify, hearts, same-crash limit) cannot change while it runs: a change
// to them is refused with an error naming them, and nothing is applied.
func (s *Supervisor) Reconfigure(cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	r, err := s.ask(request{op: "reconfigure", cfg: &cfg})
	if err != nil {
		return err
	}
	if e, ok := r.(error); ok {
		return e
	}
	return nil
}

// reconfigure runs on the loop.
func (s *Supervisor) reconfigure(n Config) error {
	o := s.cfg
	var fixed []string
	check := func(name string, same bool) {
		if !same {
			fixed = append(fixed, name)
		}
	}
	check("name", o.Name == n.Name)
	check("state-dir", o.StateDir == n.StateDir)
	check("notify", o.Notify == n.Notify && o.Watchdog == n.Watchdog && o.StartupTimeout == n.StartupTimeout)
	check("hearts", o.Hearts == n.Hearts && o.HeartSlots == n.HeartSlots && o.HeartTimeout == n.HeartTimeout &&
		o.HeartGrace == n.HeartGrace && o.NoSoftStall == n.NoSoftStall)
	check("same-crash", o.SameCrashLimit == n.SameCrashLimit && o.SameCrashSpan == n.SameCrashSpan)
	check("listen", slices.Equal(o.Listen, n.Listen) && o.FDStoreMax == n.FDStoreMax)
	// The notify socket is abstract for a child of another user.
	check("user (with notify)", !o.Notify || o.otherUser() == n.otherUser())
	if len(fixed) > 0 {
		return fmt.Errorf("%w: cannot change %v while running: restart the supervisor", ErrConfig, fixed)
	}
	if n.Retries != o.Retries || n.Span != o.Span {
		old := s.loop.times
		s.loop = newCrashLoop(n.Retries, n.Span)
		s.loop.times = old[max(0, len(old)-n.Retries):]
	}
	b := newBackoff(n)
	b.failures, b.rand = s.backoff.failures, s.backoff.rand
	s.backoff = b
	n.Command = slices.Clone(n.Command)
	s.cfg = n
	s.event(Reconfigured{})
	return nil
}
