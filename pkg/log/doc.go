// Package log is the logging of mtev-supervise and of the applications
// that link pkg/runtime: named facilities connected into a directed
// acyclic graph, written through zerolog, with stderr, file, memory-ring
// and journal outputs.
//
// # Facilities
//
// A Graph holds facilities by name. Names are hierarchical: "debug/eventer"
// created on demand (Graph.Facility) forwards to its implicit parent
// "debug", created the same way. Any facility can forward to any others
// (Graph.Connect, Spec.Outlets); a connection that would close a cycle is
// refused with ErrCycle. A facility with a Type also writes output of its
// own. New creates the built-ins: "stderr" (type stderr), and "error",
// "notice" and "debug" (disabled) forwarding to it.
//
// A line logged to a facility reaches every output reachable from it
// through enabled facilities, once each even where paths join. A disabled
// facility neither writes nor forwards, whether the line starts at it or
// arrives from another facility. Enabling, disabling, connecting and the
// debug toggle (adds the caller's file:line) take effect at run time; the
// Graph recomputes each facility's route then, so the logging path reads
// only a precomputed route.
//
//	g := log.New()
//	eventer := g.Facility("debug/eventer")
//	eventer.Log().Str("loop", "default").Int("fd", 7).Msg("registered")
//
// Log returns a *zerolog.Event, or nil when the facility reaches no
// enabled output: zerolog's methods do nothing on nil, so a disabled
// facility costs one atomic load plus the no-op calls, and guarding with
// Enabled costs the load alone. Each line carries "time" (UTC,
// microseconds, from the Graph's clock), "facility", optional "caller",
// the event's fields and "message". Printf exists for convenience; its
// arguments are evaluated even when disabled.
//
// # Outputs
//
// Each typed facility renders lines in its Format: plain
// ("2026-11-26T10:00:00.000000Z [facility] message key=value") or JSON
// (zerolog's line). Built-in types:
//
//   - "stderr": the Graph's standard error, synchronous.
//   - "file": a File, asynchronous; "file_synch": the same, synchronous.
//     Rotation by size (RotateBytes) and/or aligned time (RotateEvery,
//     checked when a line is written); the current file always at its
//     path, rotated ones at "<path>.<epoch>[.<n>]"; retention by count,
//     bytes and age after each rotation. Graph.Reopen (or SIGUSR1 through
//     ServeReopen) reopens files renamed away by an external rotator.
//   - "memory": a Ring of the last lines and/or bytes, numbered from 1 and
//     readable with Ring.Since.
//   - "journal": a pkg/journal directory, one record per line, readable
//     with journal.NewReader and journal.Follow; asynchronous.
//
// Register adds types. A Sink need not be safe for concurrent use: the
// Graph serializes calls to it.
//
// # Losing nothing
//
// A synchronous output (Mode ModeSync) is written before the logging call
// returns; a crash loses nothing already logged. An asynchronous output
// copies each line into a bounded queue (QueueBytes) drained by its own
// writer goroutine in batches. When the queue is full the Overflow policy
// applies: Block (the default) makes the writer wait, so nothing is ever
// dropped; Drop discards the line and counts it in Stats.Dropped. A crash
// loses at most the queued lines. Write failures are counted in
// Stats.Errors with the last error; lines logged during or after Close are
// counted as dropped. For capturing a child's output the supervisor uses
// LineWriter with synchronous or blocking outputs.
//
// # Configuration
//
// Graph.Configure applies Specs all-or-nothing: outputs are opened (a bad
// path or unwritable directory fails here, naming the problem) and the
// graph checked for cycles before anything changes. Graph.ConfigureFrom
// reads the <logs> section (ConfigSection, registered with pkg/config)
// and reports errors at the file:line of the <log> responsible:
//
//	<logs>
//	  <log name="main" type="file" path="/var/log/app.log" format="json"
//	       rotate_bytes="64MiB" retain_count="10" overflow="block"/>
//	  <log name="recent" type="memory" path="10000,4MiB"/>
//	  <log name="error"><outlet name="main"/><outlet name="recent"/></log>
//	  <log name="debug" disabled="false"/>
//	</logs>
//
// # Probe
//
// While an execution trace is being taken (runtime/trace), each line
// written runs in a region "log" that notes its facility (libmtev's log
// DTrace probe); otherwise the probe is one trace.IsEnabled check. A memory
// outlet (Ring) stamps each line with the time it was written.
//
// # Concurrency
//
// Every method of Graph, Facility, Ring and LineWriter is safe for
// concurrent use. The logging path takes no Graph lock: it loads the
// facility's route atomically, then, per output, either takes that
// output's mutex and writes (synchronous) or takes its queue's mutex to
// copy the line (asynchronous). Topology changes hold the Graph's mutex.
// No goroutine holds two of these locks at once. Outputs must not log to
// the Graph that owns them. Each asynchronous output owns one writer
// goroutine, stopped and waited for by Close, which drains the queue
// first. A blocked output (a full pipe, a stalled disk) blocks writers
// under the Block policy, Flush, Reopen and Close; Stats never blocks.
package log
