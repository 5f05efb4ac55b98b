package capture

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump"
)

// Method names, as the record spells them (trace.Capture.Method and
// trace.Attempt.Method).
const (
	Cooperative = trace.MethodCooperative
	Delve       = trace.MethodDelve
	DelveCore   = trace.MethodDelveCore
	CrashOutput = trace.MethodCrashOutput
	Stderr      = trace.MethodStderr
	CoreFile    = trace.MethodCore
	Glider      = trace.MethodGlider
	None        = trace.MethodNone
)

// Target is what a method captures: one process and the settings the
// supervisor copied for this incident.
type Target struct {
	PID    int
	Dir    string       // this incident's artifact directory (exists)
	Stall  *trace.Stall // the stall being captured
	Kill   bool         // a hard stall: the process is killed afterwards
	Linked bool         // it joined the heart table: it can answer dumps
	Dump   *dump.Client // its dump channel, when linked

	DumpBudget   time.Duration // the cooperative dump's budget
	Budget       time.Duration // the capture from outside's budget
	CoreAboveRSS uint64        // above this RSS a hard stall is captured through a core
	Glider       string        // external tracer, if any
	GliderBudget time.Duration

	// KillNow asks the supervisor to kill the process at once (its core
	// is written and it is no longer needed alive).
	KillNow func()
}

// Method is one way of capturing a stalled process.
type Method interface {
	// Name is the method's name in the record.
	Name() trace.Method
	// Applies says whether the method runs, given whether an earlier
	// method of the chain already captured the goroutines.
	Applies(t *Target, rec *trace.Record, captured bool) bool
	// Capture fills rec (Goroutines through Store, Threads, Artifacts,
	// Capture.PauseMS) and returns why it failed, if it did.
	Capture(ctx context.Context, t *Target, rec *trace.Record) error
}

// Checker checks, at each start, whether an executable can be captured
// from outside, and warms what the capture will read.
type Checker interface {
	Check(exe string) error
	// Uncapturable reports whether err says that stalls of the executable
	// cannot be captured from outside at all (no debug information, a Go
	// version the capture does not read), which is worth a warning.
	Uncapturable(err error) bool
}

type entry struct {
	order int
	m     Method
}

var (
	mu      sync.Mutex
	chain   []entry
	checker Checker
)

// Register adds m to the chain at order (lower first).
func Register(order int, m Method) {
	mu.Lock()
	defer mu.Unlock()
	chain = append(chain, entry{order, m})
	sort.SliceStable(chain, func(i, j int) bool { return chain[i].order < chain[j].order })
}

// Chain returns the registered methods in order.
func Chain() []Method {
	mu.Lock()
	defer mu.Unlock()
	out := make([]Method, len(chain))
	for i, e := range chain {
		out[i] = e.m
	}
	return out
}

// Names lists the registered methods' names in order.
func Names() []trace.Method {
	var out []trace.Method
	for _, m := range Chain() {
		out = append(out, m.Name())
	}
	return slices.Clip(out)
}

// RegisterChecker sets the executable check.
func RegisterChecker(c Checker) { mu.Lock(); checker = c; mu.Unlock() }

// Check returns the registered Checker, nil when none is registered.
func Check() Checker { mu.Lock(); defer mu.Unlock(); return checker }
