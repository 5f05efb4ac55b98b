// Package rest is the HTTP/REST layer on net/http, in the manner of
// libmtev's mtev_rest: routes registered by method, base prefix and
// regular expression, ACLs from <rest><acl>, compression, websockets,
// static files, an access log, limits, and a deadline on every handler
// that the watchdog sees.
//
// # Routing
//
// A Router is an http.Handler. Route (or Handle) registers a handler for
// a method under a base ("/", "/mtev/") with an expression matched
// against the rest of the decoded path, anchored at both ends (libmtev's
// are unanchored: a documented difference). For a request the longest
// registered base that prefixes the path is chosen and only its routes
// are tried, in registration order; the first whose method and expression
// match serves it, and Captures returns the expression's groups. HEAD is
// served by a GET route when no HEAD route matches; OPTIONS is answered
// 200 with Allow listing the methods of the matching routes; a path
// matched by routes of other methods is answered 405 with Allow; no match
// is 404. MethodWebSocket ("WS") routes match only websocket upgrades.
//
// # Auth and ACLs
//
// Each route has an auth check; the default is the router's ACL (SetACL,
// compiled by ParseACL from <rest><acl>). See ACL for the rules and how
// they differ from libmtev's. A refused request gets 403 {"error":"denied"}
// unless a rest_auth_denied hook answers it.
//
// # Deadlines: the watchdog sees requests
//
// A route with a deadline (Route.Deadline, else its eventer pool's
// timeout, else Options.Deadline) or a job queue runs its handler on a
// goroutine of its own (or a job of the queue) labelled with the pprof
// labels mtev.route, mtev.request and mtev.pool, while the request's
// goroutine waits. Past the deadline the router reports a Stall to
// Options.OnStall (source "http", name = route, detail = method and URI,
// the goroutine's labels), answers 503 with Retry-After and
// Connection: close (or aborts the connection when the handler had
// already begun its answer) and goes on serving. The hung handler keeps
// its goroutine; its late writes fail with ErrHandlerTimeout and its
// context is cancelled. When more than Options.MaxHung handlers of one
// pool are hung at once, the report has Hard set: the supervisor then
// kills and restarts the process.
//
// # Compression
//
// Responses are compressed when Accept-Encoding asks for gzip, deflate
// (zlib), lz4f (lz4 frame) or zstd (highest q, then that order), the body
// reaches Options.MinCompress bytes (1 KiB by default; libmtev has no
// threshold), the route allows it, and the content is not compressed
// already (images, video, archives) nor Content-Encoding set by the
// handler. Request bodies in gzip, deflate, zstd or lz4f are decoded
// before the handler reads them; the decoded size counts against
// Options.MaxBody (413).
//
// # Threads and must-not-block rules
//
// Route, Handle, SetACL, SetServices and SetModules may be called at any
// time from any goroutine. Handlers run on net/http's goroutine of the
// connection, or on their own goroutine when supervised; a supervised
// handler must watch r.Context() if it can wait. OnStall runs on the
// request's goroutine and must not block for long. Hook functions
// (PostRequest, ResponseStarting, RequestComplete, RequestLog,
// AuthDenied) run on the request's goroutine.
//
// # Access log
//
// With Options.Logs set, every request ends with a line on the
// "http/access" facility in libmtev's format
//
//	IP - USER [DD/Mon/YYYY:HH:MM:SS -0000] ID: "METHOD URI?QS PROTO" STATUS OUT|IN MS
//
// and the fields ip, user, method, protocol, uri, querystring, status,
// latency (seconds), bytes_written, bytes_read and route, which a JSON
// log output renders as its JSON form. OUT counts body bytes as sent
// (libmtev adds the header's).
//
// # Servers
//
// NewServer wraps a handler in an http.Server with the listener limits
// (header timeout, idle timeout, header size, concurrency with 503 and
// Retry-After) and protocols (HTTP/1.0, 1.1, h2 over TLS, h2c); Serve and
// Shutdown are the listener registry's Server interface.
package rest
