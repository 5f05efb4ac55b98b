// Package capture is the supervisor's capture chain: the methods that
// account for a stalled or dead child, each a small plug-in registered
// here, and the one place that chooses the culprit goroutine and bounds
// the goroutine list of a record (Store).
//
// # Methods
//
// A stall is captured by the methods of Chain, in order: each Method says
// whether it applies to the target given what the earlier ones got, and
// fills the record. The supervisor registers the child's cooperative dump
// (order 10) and the Glider (order 30); package trace/delve registers the
// capture from outside (order 20: Delve live, or above the core threshold
// Delve core), the reader of core files that crashes leave (CoreReader)
// and the executable check (Checker). A program that does not import
// trace/delve captures linked children through their dump and crashes
// through their output, and does not link Delve:
//
//	import _ "github.com/mtev-supervise/mtev-supervise/pkg/trace/delve" // capture from outside
//
// cmd/mtev-supervise imports it; a self-supervising program that wants
// its parent to capture it from outside imports it too.
//
// # Threads
//
// Register, RegisterCoreReader and RegisterChecker are for init
// functions. A Method runs on the capture goroutine of one incident, one
// capture at a time per child; it owns the record while it runs and must
// honour the target's budgets and ctx. CoreReader runs on the journal
// writer.
package capture
