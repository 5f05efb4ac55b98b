package cli

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Signals of `run` as a container's init (--init, or PID 1), as tini
// forwards them. Acted on by the supervisor itself, in every mode:
//
//	TERM, INT   stop gracefully: the child gets --stop-signal (TERM), then
//	            SIGKILL after --stop-timeout
//	HUP         reload --config, then forwarded to the child
//	USR1        reopen --log-file, then forwarded to the child
//	USR2        forwarded to the child
//
// Forwarded to the child only as an init (initForwarded): every other
// catchable signal but those the supervisor cannot pass on honestly:
//
//	CHLD                  the supervisor's own children (it reaps them)
//	PIPE                  raised by the supervisor's own writes
//	URG, PROF             used by the Go runtime (preemption, profiling)
//	SEGV BUS FPE ILL TRAP ABRT SYS
//	                      faults of the supervisor's own code
//	TTIN, TTOU            terminal job control of the supervisor
//	KILL, STOP            cannot be caught
//
// Outside init mode, a signal the supervisor does not act on keeps its
// default action, on the supervisor (QUIT dumps its goroutines and ends
// it; its guard then ends the child's tree).
var initForwarded = func() []os.Signal {
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

// As PID 1, the signals an init forwards are caught from the start, as
// HUP, USR1 and USR2 are (earlySignals): one that arrives while `run`
// reads its configuration reaches the child once it runs.
func init() {
	if isPID1() {
		signal.Notify(earlySignals, initForwarded...)
	}
}

// initSignals has the signals an init forwards delivered with HUP, USR1
// and USR2 (earlySignals, which `run` forwards), and returns the function
// that gives them their default action back. Not an init: nothing.
func initSignals(init bool) func() {
	if !init {
		return func() {}
	}
	signal.Notify(earlySignals, initForwarded...)
	return func() { signal.Reset(initForwarded...) }
}

// isPID1 reports whether this process is the init of its PID namespace.
func isPID1() bool { return os.Getpid() == 1 }
