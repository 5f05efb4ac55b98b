// Package dump is the channel over which the supervisor (the parent) asks a
// running child for its own account of a stall, before anything is killed:
// a goroutine profile and the last seconds of a runtime/trace flight
// recorder, written to files the parent names, within a time budget.
//
// # Roles
//
// The parent creates the channel with Pair, a connected pair of unix stream
// sockets. It passes the child's end in exec.Cmd.ExtraFiles, names its
// descriptor number in the environment variable MTEV_CONTROL_FD (EnvFD), and
// wraps its own end in a Client. At a soft deadline it calls
// Client.Request(ctx, dir, budget), which returns the files written with
// their sizes, or an error wrapping ErrTimeout once the budget is spent: the
// parent never waits past the budget, so it can fall back to capturing from
// outside (a debugger attach) when the child cannot answer. A Client serves
// one request at a time; Close may be called from any goroutine.
//
// The child calls StartFlightRecorder early (so a dump has history) and runs
// ServeFromEnv (or Serve) in a goroutine of its own, never on an event loop:
// the goroutine that answers must not be the one that hangs. Serve answers
// requests one at a time and returns nil when the parent closes its end, or
// the context's error when its context ends. Bad input gets an error reply,
// never a panic. A dump stops the world briefly (the goroutine profile); a
// child whose runtime is wedged, for instance by a goroutine that cannot be
// preempted, does not answer within the budget.
//
// # What a dump holds
//
//   - KindGoroutines: the goroutine profile at debug=2, every goroutine's
//     stack with wait reason and wait time, in the format of an unrecovered
//     panic (which crash-output parsers read). It includes pprof labels only
//     when the child runs with GODEBUG=tracebacklabels=1 (Go 1.26+), which
//     the supervisor should put in the child's environment.
//   - KindGrouped: the goroutine profile at debug=1, goroutines grouped by
//     identical stack, each group with its pprof labels ("# labels: {...}"),
//     which debug=2 lacks by default. Together the two files give every
//     stack and every label whatever the child's GODEBUG.
//   - KindTrace: the flight recorder's window, a runtime/trace file
//     (starting "go 1.NN trace"), for `go tool trace`.
//
// The child writes them in that order and skips the rest once the budget is
// spent, so a short budget keeps the most useful. The parent names the
// files "dump-<id>-goroutines.txt", "dump-<id>-goroutines-grouped.txt" and
// "dump-<id>-flight.trace" in the directory it passes, which should be one
// per incident.
//
// # Protocol (version 1)
//
// Messages are single-line JSON objects terminated by '\n', at most
// MaxMessage bytes each, unknown fields refused. Every message carries the
// protocol's major version "v"; a side refuses any other major. The parent
// sends requests, each with a fresh id; the child answers each request, in
// order, with a reply carrying its id.
//
//	request: {"v":1,"id":7,"op":"dump","budget_ms":2000,
//	          "files":[{"kind":"goroutines","path":"/abs/dump-7-goroutines.txt"},
//	                   {"kind":"goroutines-grouped","path":"..."},
//	                   {"kind":"trace","path":"..."}]}
//	reply:   {"v":1,"id":7,"ok":true,"elapsed_ms":12.5,
//	          "files":[{"kind":"goroutines","path":"...","size":5120},
//	                   {"kind":"trace","path":"...","size":0,"error":"flight recorder not running"}]}
//
//	request: {"v":1,"id":8,"op":"ping"}
//	reply:   {"v":1,"id":8,"ok":true}
//
// A request the child cannot parse or does not know gets {"ok":false,
// "error":...} with the request's id when it could be read (0 otherwise).
// A failure confined to one file is reported in that file's "error" and the
// reply stays ok. Paths must be absolute; the child creates or truncates
// them with mode 0600. When the parent abandons a request (budget spent),
// the child still finishes it and replies; the parent drops any reply whose
// id is not the one it waits for, so a late reply never answers a later
// request.
package dump
