// Package builtin holds the runtime's built-in HTTP endpoints, under
// libmtev's names, and the operational dashboard. Everything is a plain
// net/http handler mounted through a Mounter (libmtev's routing: method,
// base, anchored expression), so pkg/rest's router or any other mounts it.
//
// # Endpoints
//
//	GET    /mtev/stats.json[?format=simple|tagged][&reset=1]   stats registry
//	DELETE /mtev/stats.json[?type=histogram|counter]           {"stats_cleared": N}
//	GET    /metrics                       Prometheus exposition (pkg/stats, Go runtime, process)
//	GET    /mtev/memory.json              runtime/metrics scalars under "go"
//	GET    /mtev/status.json              service, version, uptime, start count (ours)
//	GET    /mtev/hearts.json              each heart: name, loop, timeout, age, state
//	GET    /mtev/incidents.json[?id=ID]   this service's incidents from the journal
//	GET    /mtev/rest.json                route table (only with Options.Routes)
//	GET    /mtev/heap_profile[?active=|trigger_dump=true]
//	GET    /mtev/trace?seconds=N          execution trace of the next N seconds
//	GET    /mtev/flight.trace             the flight recorder's window
//	GET    /eventer/sockets.json, timers.json, jobq.json, memory.json
//	GET    /eventer/pools.json            pools and loops (ours)
//	GET    /eventer/logs.json             memory outlets (ours)
//	GET    /eventer/logs/<name>.json[?since=ID][&last=N]
//	GET    /eventer/logs/<name>.ws[?since=ID]   the outlet followed over a websocket
//	GET    /debug/pprof/*                 net/http/pprof
//	GET    /, /mtev/, /mtev/ui/*          the dashboard (/ unless the app claims it)
//
// Errors are JSON, {"error": "..."}; an unknown log outlet is 404 naming
// it, as in libmtev. Access control is the router's: mount these behind
// its ACLs.
//
// # Threads
//
// Handlers run on the HTTP server's goroutines, never on an eventer loop.
// They read snapshots: an eventer snapshot waits at most the eventer's
// SnapshotWait for a stuck loop (shown as unresponsive), so every endpoint
// answers while a loop hangs. /mtev/trace holds its request for the
// requested seconds; one trace runs at a time.
//
// # Probes
//
// HTTPProbe wraps a handler so that each request runs in a runtime/trace
// task "http-request" (libmtev's http-request-start/-finish probes) while
// an execution trace is being taken; otherwise it costs one check.
//
// # Where we differ from libmtev
//
//   - /mtev/memory.json reports Go's runtime/metrics, not jemalloc.
//   - /mtev/heap_profile drives Go's heap profiler: prof.lg_sample is
//     log2 of runtime.MemProfileRate, and trigger_dump returns a pprof
//     profile.
//   - last=N returns N lines, not N-1; DELETE /mtev/stats.json answers
//     valid JSON, without a NUL byte.
//   - /eventer/memory.json counts timers and descriptors (current) and
//     callbacks run (total) under libmtev's "eventer_t" key.
//   - /mtev/status.json, /mtev/hearts.json, /mtev/incidents.json,
//     /eventer/pools.json, /eventer/logs.json and the .ws follower are
//     additions.
package builtin
