// Package watchdog supervises one child process: it starts it, watches it,
// records every death and stall as an incident, and restarts it with
// backoff until a crash-loop limit says to stop.
//
// # Contract
//
// A Supervisor is created with New and run with Serve, which returns only
// once no child it started is alive. Restart, Stop, Signal and Status may
// be called from any goroutine while Serve runs; after Serve returned they
// fail with ErrNotRunning. The same operations are offered to other
// processes over the control socket (see Control).
//
// # Stalls and captures
//
// A child is watched through the heart table (package hearts) when it
// joins it, through the systemd notify protocol with Notify, and through
// the stalls it reports of its own units of work (HTTP handlers, Lua
// states, modules, probes) over the report channel (package report),
// which take the heart's road: soft is captured and kept running, hard
// is captured and restarted; the culprit is the goroutine carrying the
// reported pprof labels. A soft
// heart deadline is captured and the child left running; a hard heart
// deadline, a start-up deadline or a notify-watchdog deadline is captured
// and the child's group killed, and the restart policy applies. A capture
// runs on its own goroutine, never on the loop, through the methods of
// the capture chain (package capture; Delve is in it only when package
// trace/delve is linked in), cheapest method first: the
// child's own dump over the dump channel (when it joined the table), then
// Delve from outside (package trace/delve; above CoreAboveRSS a hard stall
// writes a core of the stopped child, has it killed at once and reads the
// core afterwards), then the Glider. Every attempt and its error is kept in
// the record. A crash is read from the crash-output memfd, else from Go
// fatal output on stderr, else from a core file (CoreDumps); parsing and
// fingerprinting happen on the journal writer, off the restart path. The
// same-crash limit is applied there too, as soon as a fingerprint is
// known. The action of every incident (restart, keep-running, stop,
// give-up) is decided by one policy function, decide in policy.go. A
// capture that outlives its child (a core read after the kill) still
// brings its record: Serve does not return before it, and the record's
// action is decided when the child died.
//
// # Sockets and stored descriptors
//
// Config.Listen sockets are opened by Serve before the first start (all or
// none; ErrListen when one cannot be) and closed when it returns. Every
// child gets them from fd 3 up, then the descriptors children stored with
// the notify protocol's FDSTORE=1 (at most Config.FDStoreMax), with
// LISTEN_FDS and LISTEN_FDNAMES; the trampoline sets LISTEN_PID to the
// child's own pid. The supervisor's own descriptors (MTEV_CRASH_FD,
// MTEV_HEARTS_FD, MTEV_CONTROL_FD, MTEV_REPORT_FD) follow them. The store
// is owned by the loop; the notify reader closes the descriptors of every
// datagram it refuses before it reads the next, and the loop those of an
// accepted message it does not keep. See sockets.go and docs/sockets.md.
// # Probes
//
// A child that links nothing can be watched by probes (Config.Probe,
// Config.StartupProbe; see probes.go and docs/probes.md): http, https,
// tcp or exec, Kubernetes' semantics. A liveness probe's failures in a
// row are a hard stall with source "probe" (name: the target, detail: the
// last error), on the heart's road: captured, recorded, killed, restarted.
// A start-up probe gates readiness and the liveness probe; its failures in
// a row are a start-up stall. There is no soft stage for probes.
//
// # Threads and ownership
//
// All supervisor state is owned by one loop goroutine and changed through
// messages (child exits, notify datagrams, requests, timers). Other
// goroutines, each owned by Serve and waited for before it returns:
//
//   - one exit waiter per child: polls the child's pidfd and only then
//     calls Wait, so that no Wait is pending while a capture is attached
//     to the child with ptrace (a pending Wait consumes ptrace stops);
//   - two output pumps per child (stdout, stderr), which call
//     Options.Output synchronously: a slow consumer slows the child down and
//     no line is lost;
//   - the orphan reaper, woken by SIGCHLD: it reaps zombie children that no
//     code in this process owns (see internal/reap), found in /proc, and
//     never waits for "any child";
//   - one report reader per child: reads the child's stall reports,
//     drops what is over the rate limit, and hands the rest to the loop;
//   - the journal writer, so that an fsync or a crash-dump parse never
//     delays a restart;
//   - one capture goroutine per stall being captured, and one check of the
//     executable per start (delve.Preload, remembered per file version);
//   - the notify and control socket servers;
//   - the systemd reporter, when NOTIFY_SOCKET is set for this process
//     (systemd.go): woken by the loop's events and by the WATCHDOG_USEC/2
//     ticker, it asks the loop for its status (so a wedged loop stops the
//     pings) and writes to systemd's socket, never from the loop;
//   - one probe goroutine per child with probes: it runs one probe at a
//     time (an exec probe's shell is forked on the spawner's thread) and
//     sends each result to the loop, which counts and decides; it ends
//     when its child ends or stalls, and the next child's waits for it;
//   - the spawner: a goroutine locked to its OS thread that forks every
//     child. PR_SET_PDEATHSIG fires when the forking thread exits, and Go
//     ends threads whose goroutine exits while locked, so children are
//     forked from a thread that lives as long as the supervisor.
//
// Lock order (see also ARCHITECTURE.md): the process registry's lock
// (internal/reap), the capture registry's lock (package capture) and
// eventMu are each only ever taken alone; so is the systemd reporter's
// (systemd.go), which is released before it reports a warning.
// Options.Events is called with eventMu held, from the loop, the journal
// writer, or (for rate-limited refusal warnings) the notify and control
// socket servers; it must not block or call back into the Supervisor.
//
// Several Supervisors may run in one process: a Fleet (fleet.go) runs
// the services of `mtev-supervise up` and a linked app's sidecars, each
// with its own Supervisor, ordered by their dependencies. Its lock is
// taken inside eventMu (its Events hook) and never held while a
// Supervisor is called.
//
// # Processes
//
// Each child is the leader of its own process group, started with
// PR_SET_PDEATHSIG=SIGKILL (Go's fork path closes the race with a parent
// that dies before the signal is armed). Stopping sends the stop signal and
// SIGCONT to the group, then SIGKILL after the stop timeout. The supervisor
// process is a child subreaper (PR_SET_CHILD_SUBREAPER).
//
// No process of the child's tree outlives it or the supervisor (see
// contain.go and docs/processes.md): every child carries a per-Supervisor
// token in its environment (MTEV_TREE), inherited by everything it starts.
// The stop signal also goes to marked descendants outside the group; when
// the child dies (and at the stop timeout) what is left of its group and
// every marked descendant is killed; and a guard process started once per
// Serve kills every marked process in /proc when the supervisor dies, even
// by SIGKILL (it reads EOF on a pipe only the supervisor writes).
//
// The child's process attributes (Config.User, Group, Dir, Umask, EnvFile
// and the Limit fields; procexec.go) are checked by New and again at each
// start; those that Go's fork cannot apply are applied by the trampoline
// (package internal/trampoline, trampoline.go), which the child runs
// through only when one is set or the notify watchdog needs WATCHDOG_PID.
// The spawn waits on the trampoline's status pipe until it exec'd: a
// failure there is a failed start, like a failed exec.
//
// Code that starts other processes inside a supervisor process (a hook, a
// capture method) starts them with StartProcess and waits with the
// function it returns, or the orphan reaper may take their exit status
// (trace.RunGlider does the same).
package watchdog
