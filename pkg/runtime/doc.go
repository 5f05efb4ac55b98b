// Package runtime is what a Go service links to run under the watchdog:
// one entry point, Run(ctx, App) error (Main is a thin wrapper that maps
// its error to the exit status with ExitStatus), that wires the eventer (pools of loops, each with
// a heart), the crash-output channel and the dump channel to the
// supervisor, and supervises the process itself when it is run directly.
//
// # Three ways to run
//
//   - Run directly (the default), the program supervises itself: Main
//     starts a supervisor (pkg/watchdog, the same code as mtev-supervise)
//     whose child is the program itself, re-executed with the same
//     arguments. Go cannot fork a running runtime, so the child is a fresh
//     exec, as libmtev's mtev_main forks.
//   - Run under a supervisor (mtev-supervise run -- PROGRAM, or the
//     program's own supervising parent), it is the child. One variable
//     decides this: MTEV_SUPERVISOR_PID, which every supervisor sets.
//     The child joins what its environment offers (MTEV_HEARTS_FD,
//     MTEV_CRASH_FD, MTEV_CONTROL_FD, MTEV_REPORT_FD; any may be absent,
//     as under --hearts off) and never starts a second supervisor. It
//     removes these variables from its own environment, so that a program
//     it starts decides for itself.
//   - With MTEV_FOREGROUND=1 it runs without any supervisor (debugging).
//
// RunAttached runs the child side with the channels given in an Attach
// instead of the environment; package runtimetest builds them for an
// app's own tests.
//
// # What the child does
//
//   - debug.SetCrashOutput points at the crash-output memfd, so that a
//     fatal error's full trace reaches the supervisor apart from the logs;
//   - every eventer loop gets a heart named like the loop ("e:default/0"),
//     and its goroutine carries a pprof label with that name, so a stalled
//     heart names its goroutine; only loops of a pool with LockOSThread
//     run on one OS thread, and only their hearts name a thread (the
//     others are unbound from the thread that created them);
//   - Runtime.ReportStall tells the supervisor that one of the service's
//     own units of work (an HTTP handler, a Lua state, a module, a probe)
//     has stalled; the supervisor captures, records and, for a hard
//     report, restarts, as for a stalled heart (see package
//     watchdog/report for the channel and its rate limits);
//   - a goroutine that runs on no loop answers the supervisor's dump
//     requests (goroutine profiles and the last seconds of a flight
//     recorder) within the budget the supervisor sets;
//   - the modules of the configuration's <modules> section (pkg/module)
//     come up once the eventer runs, then the child_start hook point
//     (ChildStartHook) runs, then App.Start; modules are stopped when the
//     service ends;
//   - readiness is declared once the eventer runs and App.Start returned.
//
// # Introspection
//
// Once App.Start returns, the runtime mounts its built-in endpoints
// (pkg/runtime/builtin: /mtev/stats.json, /metrics, /eventer/*.json,
// /mtev/hearts.json, /mtev/incidents.json, traces, pprof) and the
// operational dashboard on its REST router, behind the router's ACLs; the
// dashboard takes "/" unless the app serves it. The eventer registers its
// histograms in stats.Default; the log outputs, the config caches and the
// router's requests are registered too. MountBuiltins mounts the same on
// any other router.
//
// # Faults on demand
//
// Runtime.Hang makes one loop hang (its heart stops), and Runtime.Crash
// crashes the process from a loop, like libmtev's console commands hang
// and crash: for tests, demos and fire drills.
//
// # Signals
//
// In the child, SIGTERM and SIGINT cancel the context given to App.Start
// and App.Run; the eventer is stopped after Run returns. In a
// self-supervising parent, TERM and INT stop the child gracefully and HUP,
// USR1 and USR2 are forwarded to it.
//
// # Capture from outside
//
// A self-supervising program's parent captures a stalled child through
// the child's own dump. To capture also a child that cannot answer (a
// wedged runtime), with Delve, import it, one line:
//
//	import _ "github.com/mtev-supervise/mtev-supervise/pkg/trace/delve"
//
// Without that import the program does not link Delve (about 6 MB less).
package runtime
