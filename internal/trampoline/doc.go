// Package trampoline is the child side of the supervisor's trampoline
// (pkg/watchdog/trampoline.go): the one place where a child's process
// attributes are applied between fork and exec. The supervisor starts its
// own executable with Env set; this package's init sees it and, in this
// order:
//
//  1. sets the resource limits, the umask and the working directory;
//  2. sets the supplementary groups, the gid and the uid (on every thread),
//     then arms PR_SET_PDEATHSIG again, since a change of credentials
//     clears it, and exits if the supervisor died meanwhile;
//  3. sets WATCHDOG_PID to its own pid when WATCHDOG_USEC is set, and
//     LISTEN_PID to its own pid when LISTEN_FDS is set: they name the
//     child's pid, known only after the fork, and exec keeps the pid;
//  4. execs the command named in PathEnv with the arguments that follow
//     its own argv[0].
//
// What it applies is described in AttrsEnv and DirEnv; these variables are
// removed before the exec. Its status descriptor (StatusEnv) is
// close-on-exec: the supervisor reads EOF once the exec succeeded, or the
// one-line reason of a failure, which also goes to stderr before the
// trampoline exits with status Exit.
//
// The package imports only runtime and syscall, so that its init runs
// right after theirs, before the rest of the program's packages (a
// supervisor linking Delve spends tens of milliseconds in them): the
// trampoline costs a restart little more than the Go runtime's start.
// Any binary that links it can be a trampoline; without Env set, its init
// does nothing.
//
// # Threads
//
// It runs in its package init, on the main thread, locked to it; it never
// returns when Env is set (it execs or exits).
package trampoline
