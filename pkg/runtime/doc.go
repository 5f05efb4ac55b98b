// Package runtime is what a Go service links to run under the watchdog:
// one entry point, Main, that wires the eventer (pools of loops, each with
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
//     program's own supervising parent), it is the child: it finds the heart
//     table, the crash-output fd and the dump channel in its environment
//     (MTEV_HEARTS_FD, MTEV_CRASH_FD, MTEV_CONTROL_FD) and joins them, so
//     no second supervisor is started.
//   - With MTEV_FOREGROUND=1 it runs without any supervisor (debugging).
//
// # What the child does
//
//   - debug.SetCrashOutput points at the crash-output memfd, so that a
//     fatal error's full trace reaches the supervisor apart from the logs;
//   - every eventer loop gets a heart named like the loop ("e:default/0"),
//     created on the loop's own (locked) OS thread, and its goroutine
//     carries a pprof label with that name, so a stalled heart names its
//     thread and its goroutine;
//   - a goroutine that runs on no loop answers the supervisor's dump
//     requests (goroutine profiles and the last seconds of a flight
//     recorder) within the budget the supervisor sets;
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
package runtime
