// Package plugin is the protocol between a host that links pkg/runtime and
// a module running as a separate executable, on
// github.com/hashicorp/go-plugin (net/rpc over a unix socket). A module
// author writes a main that calls Serve with a Module; the host side
// (pkg/module) starts the executable, handshakes, drives libmtev's
// lifecycle (config, init, post_init) over the connection, attaches the
// module to the hook points it names, and watches it with a heartbeat.
//
// # Threads and must-not-block rules
//
// In the module process every call into the Module (Config, Init,
// PostInit and the hook functions) runs one at a time, under one lock,
// and so does the heartbeat (Ping): a call that never returns stops the
// module's heart, exactly as a callback that never returns stops an
// eventer loop's. The host sees the heart stop within its heartbeat
// timeout, reports a hang of its own, kills the module process (SIGQUIT
// first, so a Go module prints its goroutines to stderr) and starts it
// again. Hook functions should return quickly: the host waits for each
// at most its hook timeout and then carries on as if it had returned
// CONTINUE.
//
// The module process's output is read by the host: what it writes to
// os.Stdout and os.Stderr (go-plugin forwards both) and to file
// descriptor 2 (where a Go panic goes) becomes lines of the host's log,
// and the last 64 KiB go with the report of a crash. The process's real
// stdout belongs to the handshake: do not write to file descriptor 1
// directly.
//
// # Versioning
//
// Handshake carries the protocol version; a host and a module built
// against different versions refuse each other at the handshake with a
// message naming both versions.
package plugin
