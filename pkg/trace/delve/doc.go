// Package delve captures goroutine traces of a Go process from outside,
// through Delve's ptrace and core-file support. It is the only package of
// mtev-supervise that imports Delve.
//
// Importing it (even blank, `import _ ".../pkg/trace/delve"`) registers it
// in the supervisor's capture chain (package watchdog/capture): Delve live
// and Delve core for stalls, the reading of core files crashes leave, and
// the executable check at each start. cmd/mtev-supervise imports it; a
// program that links pkg/runtime alone does not link Delve.
//
// # Capture
//
// [Capture] attaches to a live process, reads every goroutine (id, state,
// wait reason, wait time, pprof labels, creator, frames) and every OS thread
// (the goroutine on it, frames), then detaches without killing: the process
// continues exactly where it was stopped. The caller kills it afterwards if
// it wants to; Capture never signals the process (Delve's detach-and-kill
// sends SIGINT, which a process may ignore, so it is never used).
//
// The process is stopped for the whole capture (see [Result.Pause]); for
// large processes [DumpCore] stops it only for as long as it takes to write
// a core file, which [ReadCore] then reads offline, also for core files the
// kernel wrote for a crash.
//
// Before attaching, the executable is checked: a binary built with -s or -w
// (no DWARF) fails with [ErrNoDebugInfo], a non-Go binary with [ErrNotGo], a
// Go version this Delve cannot read with [ErrGoVersion], all without the
// process ever being stopped. [Preload] runs the same checks when a child
// starts and warms the page cache with the executable, so a stall finds the
// debug information on hand.
//
// # Rules for callers
//
//   - Nothing may wait for the process (os.Process.Wait, waitid on its pidfd
//     with WEXITED) while a capture runs: for a tracer, waitid also reports
//     ptrace stops, consumes the stop that attaching produces, and the attach
//     then hangs. Watch the process's exit by polling a pidfd for readability
//     (it becomes readable at exit only) and call Wait after that.
//   - Only one tracer can attach to a process at a time: a second attach fails
//     with [ErrPtrace].
//   - Capture, DumpCore and ReadCore block for the whole operation. They are
//     safe to call from several goroutines for different processes. Attaching
//     itself cannot be interrupted (it takes 0.1 to 0.3 s plus the time to load
//     the debug information); the context and [Options.Budget] are checked
//     between goroutines while reading, and past them the read stops, the
//     process is detached, and what was read is returned with an error.
//
// Wait times (trace.Goroutine.WaitMS) come from the runtime's g.waitsince,
// the same source as the "N minutes" of the runtime's own dumps. The runtime
// sets it only when a garbage collection finds the goroutine blocked, to the
// start of the previous collection: a goroutine has a wait time only once
// two collections have run while it was blocked (WaitMS is 0 before that),
// and the time is approximate.
package delve
