package watchdog

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// As a container's init (Config.Init: PID 1, or `run --init`), the
// supervisor does what tini and dumb-init do, plus the watchdog:
//
//   - it reaps every zombie: it is a child subreaper already (setSubreaper)
//     and, as PID 1, the reaper of every orphan of its PID namespace,
//     including processes that never were its child's (a `docker exec`
//     session's orphans). The orphan reaper (Serve, internal/reap) takes
//     every zombie child of the main thread that no code of this process
//     owns, and never waits for "any child", so it never races the exit
//     waiter's pidfd wait of the child or a capture's ptrace stops;
//   - the command line forwards every catchable signal it does not act on
//     (internal/cli, docs/deploy.md);
//   - it ends with its child's status: after a stop (TERM from `docker
//     stop`) the status is the child's, 128+N when a signal ended it, as a
//     shell's and tini's is, where a supervisor that is not an init ends
//     with 0. The crash-loop and same-crash limits keep their own
//     statuses (3 and 4): the supervisor gave up, which the container's
//     restart policy should see.

// InitForwarded are the signals an init forwards to the child beyond
// those every supervisor acts on (TERM and INT stop it; HUP, USR1 and
// USR2 are passed on in every mode): every catchable signal but those a
// supervisor cannot pass on honestly:
//
//	CHLD                  the supervisor's own children (it reaps them)
//	PIPE                  raised by the supervisor's own writes
//	URG, PROF             used by the Go runtime (preemption, profiling)
//	SEGV BUS FPE ILL TRAP ABRT SYS
//	                      faults of the supervisor's own code
//	TTIN, TTOU            terminal job control of the supervisor
//	KILL, STOP            cannot be caught
//
// `run --init` and a pkg/runtime program that is PID 1 forward them.
var InitForwarded = func() []os.Signal {
	sigs := []os.Signal{
		unix.SIGQUIT, unix.SIGALRM, unix.SIGVTALRM, unix.SIGWINCH, unix.SIGTSTP, unix.SIGCONT,
		unix.SIGXCPU, unix.SIGXFSZ, unix.SIGPWR, unix.SIGIO, unix.SIGSTKFLT,
	}
	// The real-time signals glibc leaves to programs (SIGRTMIN is 34
	// there; 32 and 33 are its own): systemd-in-a-container's
	// SIGRTMIN+3 halt among them.
	for s := 34; s <= 64; s++ {
		sigs = append(sigs, syscall.Signal(s))
	}
	return sigs
}()

// endStatus is what Serve returns once the child is gone: the final error,
// or for an init stopped with no error of its own, the child's last
// status when it was not a clean exit.
func (s *Supervisor) endStatus() error {
	if !s.cfg.Init || s.final != nil || s.lastExit == nil {
		return s.final
	}
	if ex := s.lastExit; ex.Code != nil && *ex.Code == 0 {
		return nil
	}
	return &ChildExitError{Exit: *s.lastExit}
}
