package eventer

import "github.com/mtev-supervise/mtev-supervise/pkg/hook"

// StartedHook is libmtev's eventer_started: it runs once, when
// System.Start has started every pool, on the goroutine that called
// Start and with no lock held, so its functions may post to loops, add
// timers and create queues. The result is not consulted. Functions
// attached by name see {"pools":[{"name","loops"}]}.
var StartedHook = hook.New[*System]("eventer_started", "every eventer pool runs").
	Describe(func(s *System) any {
		type pool struct {
			Name  string `json:"name"`
			Loops int    `json:"loops"`
		}
		var v struct {
			Pools []pool `json:"pools"`
		}
		for _, p := range s.Pools() {
			v.Pools = append(v.Pools, pool{p.Name(), p.Len()})
		}
		return v
	})
