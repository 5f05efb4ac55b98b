package cli

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// The probe flags of `run` (docs/probes.md), also attributes of <run>.

// probeValue is a --probe or --startup-probe flag: the target is parsed
// as it is set, so that a bad one is refused with the flag's name, or
// with file:line when it comes from a configuration file.
type probeValue struct{ target *string }

func (v probeValue) String() string {
	if v.target == nil {
		return ""
	}
	return *v.target
}

func (v probeValue) Set(s string) error {
	if s == "" {
		*v.target = ""
		return nil
	}
	p, err := watchdog.ParseProbe(s)
	if err != nil {
		return err
	}
	*v.target = p.String()
	return nil
}

const probeForms = "http://HOST:PORT/PATH (a 2xx or 3xx status passes), tcp://HOST:PORT (a connection) or exec:COMMAND (exit 0; run by /bin/sh -c, its process group killed at the timeout)"

// bindProbes adds the probe flags to fs.
func bindProbes(fs *flag.FlagSet, c *watchdog.Config) {
	fs.Var(probeValue{&c.Probe.Target}, "probe", "liveness probe `TARGET`: "+probeForms+"; --probe-failures failures in a row are a hard stall (capture, kill, restart)")
	fs.DurationVar(&c.Probe.Interval, "probe-interval", watchdog.DefaultProbeInterval, "from the start of one probe to the start of the next; a slower probe delays the next (never two at once)")
	fs.DurationVar(&c.Probe.Timeout, "probe-timeout", watchdog.DefaultProbeTimeout, "a probe that takes longer fails; may exceed the interval")
	fs.IntVar(&c.Probe.Failures, "probe-failures", watchdog.DefaultProbeFailures, "failures in a row that are a stall")
	fs.Var(probeValue{&c.StartupProbe.Target}, "startup-probe", "start-up probe `TARGET`, in the forms of --probe: the child is ready, and the liveness probe begins, once it passes; --startup-probe-failures failures in a row are a start-up stall")
	fs.DurationVar(&c.StartupProbe.Interval, "startup-probe-interval", watchdog.DefaultProbeInterval, "interval of the start-up probe")
	fs.DurationVar(&c.StartupProbe.Timeout, "startup-probe-timeout", watchdog.DefaultProbeTimeout, "timeout of the start-up probe")
	fs.IntVar(&c.StartupProbe.Failures, "startup-probe-failures", watchdog.DefaultProbeFailures, "failures in a row of the start-up probe that are a start-up stall (its budget is this times its interval)")
	fs.DurationVar(&c.ProbeDelay, "probe-initial-delay", 0, "the first probe of each child (the start-up probe's, when there is one) runs this long after its start")
}

// checkProbes refuses probe settings the watchdog would take for its
// defaults (a zero) or refuse without naming the flag.
func checkProbes(c watchdog.Config) error {
	for _, p := range []struct {
		flag string
		cfg  watchdog.ProbeConfig
	}{{"probe", c.Probe}, {"startup-probe", c.StartupProbe}} {
		switch {
		case p.cfg.Interval <= 0:
			return usageError("--%s-interval %v: want a positive duration", p.flag, p.cfg.Interval)
		case p.cfg.Timeout <= 0:
			return usageError("--%s-timeout %v: want a positive duration", p.flag, p.cfg.Timeout)
		case p.cfg.Failures < 1:
			return usageError("--%s-failures %d: want at least 1", p.flag, p.cfg.Failures)
		}
	}
	if c.ProbeDelay < 0 {
		return usageError("--probe-initial-delay %v: must not be negative", c.ProbeDelay)
	}
	return nil
}

// writeProbes writes the probe lines of `status`.
func writeProbes(w io.Writer, probes []watchdog.ProbeInfo) {
	for _, p := range probes {
		fmt.Fprintf(w, "  %s probe %s: %s, %d of %d failures in a row, %d probes (%d failed)", p.Phase, p.Target, p.State, p.Failures, p.Threshold, p.Probes, p.Failed)
		if p.Ignored > 0 {
			fmt.Fprintf(w, ", %d not counted (during a capture)", p.Ignored)
		}
		if p.Probes > 0 {
			fmt.Fprintf(w, ", last %v ago took %v", time.Duration(p.LastAgoMS)*time.Millisecond, time.Duration(p.LastMS)*time.Millisecond)
		}
		if p.LastError != "" {
			fmt.Fprintf(w, ": %s", p.LastError)
		}
		fmt.Fprintln(w)
	}
}
