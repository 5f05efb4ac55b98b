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
// Delve core) and the executable check (Checker).
//
// A dead child's remains are read by the Readers, in order, the same way:
// the supervisor registers the reader of its fatal output (order 10: the
// crash-output memfd or its stderr), package trace/delve the reader of the
// core file a crash left (order 20, when the output gave no goroutines). A program that does not import
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
// Register, RegisterReader and RegisterChecker are for init functions. A
// Method runs on the capture goroutine of one incident, one capture at a
// time per child; it owns the record while it runs and must honour the
// target's budgets and ctx. A Reader runs on the journal writer, which
// owns the record then.
package capture
