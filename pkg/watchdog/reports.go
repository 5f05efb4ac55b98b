package watchdog

import (
	"fmt"
	"os/exec"

	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/report"
)

// reportMsg carries a stall the child reported of its own unit of work to
// the loop.
type reportMsg struct {
	c  *child
	st report.Stall
}

// attachReports adds the stall report channel to a child about to start
// (fd 3+len(ExtraFiles), named in MTEV_REPORT_FD). It returns the
// parent's end, and a function to call once the child has started (or
// failed to).
func (s *Supervisor) attachReports(cmd *exec.Cmd) (*report.Receiver, func(), error) {
	parent, childEnd, err := report.Pair()
	if err != nil {
		return nil, nil, fmt.Errorf("watchdog: %w", err)
	}
	rcv, err := report.NewReceiver(parent)
	parent.Close()
	if err != nil {
		childEnd.Close()
		return nil, nil, fmt.Errorf("watchdog: %w", err)
	}
	cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", report.EnvFD, 3+len(cmd.ExtraFiles)))
	cmd.ExtraFiles = append(cmd.ExtraFiles, childEnd)
	return rcv, func() { childEnd.Close() }, nil
}

// serveReports forwards c's reports to the loop until the receiver is
// closed (when c has exited). The receiver's limiter keeps a flood of
// reports off the loop; a malformed report is a warning, once per child.
func (s *Supervisor) serveReports(c *child) {
	warned := false
	c.reports.Serve(func(st report.Stall) {
		select {
		case s.msgs <- reportMsg{c: c, st: st}:
		case <-s.done:
		}
	}, func(err error) {
		if !warned {
			warned = true
			s.event(Warning{Err: fmt.Errorf("watchdog: pid %d: stall report refused: %w", c.pid, err)})
		}
	})
}

// reported handles a stall the child reported: the same road as a stalled
// heart (capture, record, and for a hard one kill and restart).
func (s *Supervisor) reported(m reportMsg) {
	c := m.c
	if c != s.cur || c.planned != planNone {
		return
	}
	st := trace.Stall{
		Source:    trace.StallSource(m.st.Source),
		Stage:     trace.StageSoft,
		Name:      m.st.Name,
		Detail:    m.st.Detail,
		Labels:    m.st.Labels,
		AgeMS:     ms(m.st.Elapsed),
		TimeoutMS: ms(m.st.Deadline),
		Dropped:   m.st.Dropped,
	}
	if m.st.PID != 0 && m.st.PID != c.pid {
		// Only a process of the child's own group may be captured in its
		// stead: a report never points the supervisor's debugger at a
		// stranger.
		if pg, err := unix.Getpgid(m.st.PID); err == nil && pg == c.pid {
			st.PID = m.st.PID
		} else {
			s.event(Warning{Err: fmt.Errorf("watchdog: pid %d reported a stall of pid %d, which is not in its process group; capturing the child", c.pid, m.st.PID)})
		}
	}
	if m.st.Hard {
		st.Stage = trace.StageHard
	}
	s.stalled(c, st)
}
