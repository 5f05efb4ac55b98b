// Package hook provides typed call-out points in the manner of libmtev's
// hooks: a package declares a hook point in one line, any number of
// functions attach to it, and the code that owns the point invokes them.
//
//	var Accept = hook.New[net.Conn]("listener_accept", "a connection was accepted")
//
//	Accept.Register("audit", func(c net.Conn) hook.Result { ...; return hook.Continue })
//	if Accept.Invoke(conn) == hook.Abort { conn.Close() }
//
// # Semantics (libmtev's, exactly)
//
// The most recently registered function runs first. Invoke stops at the
// first Abort and returns Abort. Done is remembered but does not stop the
// chain: later functions still run, and Invoke returns Done unless one of
// them aborts. Otherwise Invoke returns Continue. There is no unregister,
// as in libmtev: a function attached for a while checks its own condition.
// A function that panics is not recovered: hook functions run on the
// caller's goroutine and a panic is a bug to be recorded, not hidden.
//
// # Threads
//
// Register, Invoke and Exists may be called from any goroutine at any
// time. Invoke reads an immutable snapshot of the attached functions with
// one atomic load; with nothing attached it costs about as much as a nil
// check, so hook points may sit on hot paths. Register copies the list
// under a mutex (registration is rare). A function registered while an
// Invoke runs is seen by the next Invoke.
//
// # Discovery and attaching by name
//
// Every hook point created with New is listed by Points, with the names
// of what is attached: Handler serves the list as /mtev/hooks.json (Mount
// puts it on a router) and Show prints it for the `show hooks` console
// command. AttachJSON attaches a function to a point by its name, with
// the point's values marshaled to JSON (or to the view set by Describe):
// that is how a module in another process or a script attaches without
// knowing the Go type. A JSON function costs its marshaling on every
// invocation of that point; the other points are unaffected.
package hook
