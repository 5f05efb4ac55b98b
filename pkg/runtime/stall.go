package runtime

import (
	"errors"

	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/report"
)

// Stall is a stall of one of the service's own units of work, reported
// with ReportStall: an HTTP handler past its deadline, a Lua state that
// does not yield, a module process that stopped answering, a failed probe.
//
//   - Source: "http", "lua", "module", "probe" (a lowercase word);
//   - Name: the route, script or module, which groups repeats of the same
//     stall under one fingerprint;
//   - Detail: free text for the record;
//   - Elapsed, Deadline: how long the work has run, and its deadline;
//   - Labels: the pprof labels of the stuck goroutine (label it with
//     runtime/pprof, e.g. mtev.route=...), which mark it as the culprit;
//   - PID: a process of the service's own (a module's) to capture instead
//     of the service; 0 captures the service;
//   - Hard: kill and restart the service after the capture; otherwise it
//     keeps running.
type Stall = report.Stall

// ErrNotSupervised is returned by ReportStall when no supervisor listens.
var ErrNotSupervised = errors.New("runtime: not supervised")

// ReportStall tells the supervisor that a unit of work of this service
// has stalled. The supervisor captures the service (its own dump; the
// culprit is the goroutine carrying s.Labels), records the incident with
// s.Source and s.Name, and for a hard stall kills and restarts the
// service. It never blocks: a report that cannot go out at once, or one
// over the rate limit (report.SendBurst, report.SendEvery), is dropped with an error
// wrapping report.ErrDropped or report.ErrRateLimited and counted in the
// next report. It may be called from any goroutine. Without a supervisor
// it returns ErrNotSupervised.
func (rt *Runtime) ReportStall(s Stall) error {
	if rt == nil || rt.reports == nil {
		return ErrNotSupervised
	}
	return rt.reports.Send(s)
}

// reportOrLog reports a stall of a subsystem (HTTP handler, Lua state,
// module process) to the supervisor. Every stall is also logged to the
// "error" facility, so an unsupervised service, or a report the rate
// limit dropped, still leaves a line saying what stalled.
func (rt *Runtime) reportOrLog(s Stall) {
	err := rt.ReportStall(s)
	if rt.Logs == nil {
		return
	}
	ev := rt.Logs.Facility("error").Log().
		Str("source", s.Source).Str("name", s.Name).Str("detail", s.Detail).
		Dur("elapsed", s.Elapsed).Dur("deadline", s.Deadline).Bool("hard", s.Hard)
	if len(s.Labels) > 0 {
		ev = ev.Interface("labels", s.Labels)
	}
	if s.PID != 0 {
		ev = ev.Int("pid", s.PID)
	}
	if err != nil {
		ev = ev.Str("report", err.Error())
	}
	ev.Msg("stall of " + s.Source + " " + s.Name)
}
