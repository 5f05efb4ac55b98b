// Package report is the channel over which a supervised child tells its
// supervisor that one of its own units of work has stalled: an HTTP
// handler past its deadline, a Lua state that does not yield, a module
// process that stopped answering, a failed liveness probe. The supervisor
// then runs the same road as for a stalled heart: capture, record, and
// for a hard report kill and restart.
//
// # Roles
//
// The parent creates the channel with Pair, a connected pair of unix
// datagram sockets, passes the child's end in exec.Cmd.ExtraFiles and
// names its descriptor number in MTEV_REPORT_FD (EnvFD). It reads its end
// with a Receiver. The child takes its end with SenderFromEnv (or
// NewSender) and calls Send from any goroutine.
//
// # Contract
//
//   - Send never blocks: a datagram the socket cannot take at once is
//     dropped and Send says so (ErrDropped). The child also limits itself
//     (ErrRateLimited), so that a flood of reports costs it nothing but a
//     counter. Both counts travel with the next report that goes out.
//   - The Receiver limits what it delivers to the supervisor (a token
//     bucket: Burst reports at once, then one per Every), so that no child
//     can storm the supervisor's loop. Over the limit, reports are counted
//     and dropped. The first hard report of a child passes both limits
//     (it ends the child, so it is the one that must not be lost); later
//     hard reports are limited like soft ones. A malformed, oversized or wrong-version datagram is
//     refused with an error given to the Bad callback, never delivered.
//   - Serve runs on a goroutine of its own and calls Deliver and Bad
//     synchronously; they must not block for long. Close ends Serve.
//
// # Protocol (version 1)
//
// One JSON object per datagram, at most MaxMessage bytes, unknown fields
// refused:
//
//	{"v":1,"op":"stall","source":"http","name":"GET /slow",
//	 "detail":"handler running past its deadline","elapsed_ms":5012,
//	 "deadline_ms":5000,"labels":{"mtev.route":"GET /slow"},
//	 "pid":0,"hard":false,"dropped":0}
//
// source is one of http, lua, module, probe (or another lowercase word);
// name identifies the unit of work (route, script, module); labels are
// the pprof labels that the stuck goroutine carries, which the supervisor
// uses to mark it as the culprit in the capture; pid, when not 0, is a
// process of the child's own (a module's process) to capture instead of
// the child; hard asks the supervisor to kill and restart the child;
// dropped counts reports the child could not send since the last one.
package report
