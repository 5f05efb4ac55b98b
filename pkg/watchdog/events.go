package watchdog

import (
	"fmt"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// Event is something the supervisor did or saw, handed to Options.Events.
// The hook runs on the supervisor's loop goroutine and must not block.
type Event interface {
	fmt.Stringer
	event()
}

// Started: a child was started.
type Started struct {
	PID        int
	StartCount int
	Command    []string
}

// Exited: a child ended.
type Exited struct {
	PID    int
	Exit   trace.Exit
	Uptime time.Duration
	// Planned is true when the supervisor stopped the child itself (stop,
	// restart request, or a stall kill already recorded).
	Planned bool
}

// Ready: the child declared itself ready (notify READY=1).
type Ready struct{ PID int }

// Status: the child sent a notify STATUS= text.
type Status struct {
	PID  int
	Text string
}

// Stalled: a deadline passed. The child is killed and restarted per policy.
type Stalled struct {
	PID   int
	Stall trace.Stall
}

// Recorded: an incident record was appended to the journal.
type Recorded struct{ Record *trace.Record }

// RestartScheduled: the next start happens after Delay.
type RestartScheduled struct{ Delay time.Duration }

// GaveUp: the crash-loop limit (or, with Fingerprint set, the same-crash
// limit) was reached; the supervisor ends.
type GaveUp struct {
	Deaths      int
	Span        time.Duration
	Fingerprint string
}

// Stopping: a graceful stop of the child began.
type Stopping struct {
	PID    int
	Signal string
	Reason string
}

// Killed: the stop timeout passed and the process group was killed.
type Killed struct{ PID int }

// Reconfigured: a new configuration was applied (Reconfigure).
type Reconfigured struct{}

// Warning: something failed that does not stop supervision (a journal
// write, a notify message from a stranger, ...).
type Warning struct{ Err error }

func (Started) event()          {}
func (Exited) event()           {}
func (Ready) event()            {}
func (Status) event()           {}
func (Stalled) event()          {}
func (Recorded) event()         {}
func (RestartScheduled) event() {}
func (GaveUp) event()           {}
func (Stopping) event()         {}
func (Killed) event()           {}
func (Warning) event()          {}
func (Reconfigured) event()     {}

func (e Started) String() string {
	return fmt.Sprintf("started pid %d (start %d): %q", e.PID, e.StartCount, e.Command)
}

func (e Exited) String() string {
	s := fmt.Sprintf("pid %d ended: %s after %v", e.PID, e.Exit.String(), e.Uptime.Round(time.Millisecond))
	if e.Planned {
		s += " (stopped by the supervisor)"
	}
	return s
}

func (e Ready) String() string  { return fmt.Sprintf("pid %d is ready", e.PID) }
func (e Status) String() string { return fmt.Sprintf("pid %d status: %s", e.PID, e.Text) }
func (e Stalled) String() string {
	what := string(e.Stall.Source)
	if e.Stall.Heart != "" {
		what += " " + e.Stall.Heart
	}
	if e.Stall.Name != "" && e.Stall.Failures > 0 {
		// A probe of the supervisor's (probes.go).
		return fmt.Sprintf("pid %d stalled (%s %s, %s): %d probes failed in a row, no pass for %dms: %s",
			e.PID, what, e.Stall.Name, e.Stall.Stage, e.Stall.Failures, e.Stall.AgeMS, e.Stall.Detail)
	}
	if e.Stall.Name != "" {
		// Reported by the child: its unit of work ran past its deadline.
		return fmt.Sprintf("pid %d stalled (%s %s, %s, reported): running for %dms, deadline %dms",
			e.PID, what, e.Stall.Name, e.Stall.Stage, e.Stall.AgeMS, e.Stall.TimeoutMS)
	}
	return fmt.Sprintf("pid %d stalled (%s, %s deadline): no sign of life for %dms, timeout %dms",
		e.PID, what, e.Stall.Stage, e.Stall.AgeMS, e.Stall.TimeoutMS)
}

func (e Recorded) String() string {
	what := string(e.Record.Reason)
	if e.Record.Stall != nil {
		what += " (" + string(e.Record.Stall.Stage) + ")"
	}
	if sum := trace.Summary(e.Record); sum != "" {
		what += " in " + sum
	}
	return fmt.Sprintf("incident %s recorded: %s (see: mtev-supervise traces show %s)", e.Record.ID, what, e.Record.ID)
}

func (e RestartScheduled) String() string {
	return fmt.Sprintf("restarting in %v", e.Delay.Round(time.Millisecond))
}

func (e GaveUp) String() string {
	if e.Fingerprint != "" {
		return fmt.Sprintf("giving up: the same crash (%s) %d times within %v (same-crash limit)", e.Fingerprint, e.Deaths, e.Span)
	}
	return fmt.Sprintf("giving up: %d deaths within %v (crash-loop limit)", e.Deaths, e.Span)
}

func (e Stopping) String() string {
	return fmt.Sprintf("stopping pid %d with %s (%s)", e.PID, e.Signal, e.Reason)
}

func (e Killed) String() string {
	return fmt.Sprintf("pid %d did not stop in time: killed its process group", e.PID)
}

func (Reconfigured) String() string { return "configuration reloaded" }

func (e Warning) String() string { return "warning: " + e.Err.Error() }
