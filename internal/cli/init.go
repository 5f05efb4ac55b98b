package cli

import (
	"os"
	"os/signal"

	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
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
// Forwarded to the child only as an init: watchdog.InitForwarded, every
// other catchable signal but those the supervisor cannot pass on honestly.
//
// Outside init mode, a signal the supervisor does not act on keeps its
// default action, on the supervisor (QUIT dumps its goroutines and ends
// it; its guard then ends the child's tree).
var initForwarded = watchdog.InitForwarded

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
