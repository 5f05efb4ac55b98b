// Package console is the operator's console of a service, in the manner of
// libmtev's telnet console: a tree of commands that an application extends
// in a few lines, with help at every level, unambiguous abbreviations, tab
// completion of commands and arguments, history, and modes with their own
// prompt ("configure terminal").
//
//	console.Register("show widgets", showWidgets, nil).Describe("list the widgets")
//
// # Transports
//
// The commands know nothing of the transport. A Server serves sessions on
// any stream listener (Serve) and on a websocket (Handler, Mount at
// /mtev/console). On a stream, the first byte the client sends picks the
// protocol:
//
//   - a telnet command (IAC): a line-edited session through
//     golang.org/x/term, with the server echoing, suppress-go-ahead, and the
//     window size from NAWS; IAC bytes are escaped both ways. On TCP the
//     server starts the negotiation at once, so a stock telnet client gets
//     line editing;
//   - '{': the JSON protocol, one message per line (what
//     `mtev-supervise console -c` speaks);
//   - anything else: plain lines, answered with output and a prompt (nc,
//     socat).
//
// The websocket speaks the same JSON protocol as libmtev's (subprotocol
// mtev_console; see Request and Reply).
//
// Access: unix sockets admit only peers of this process's uid or root
// (SO_PEERCRED); TCP clients must come from Options.Allow (loopback only
// when empty); the websocket is guarded by the HTTP layer's ACLs. An input
// line longer than Options.MaxLine is dropped and refused.
//
// # Built-in commands
//
// help, exit, apply (in every mode), show version, show eventer pools, show eventer debug
// timers|sockets|jobq [NAME]|memory, mtev jobq NAME concurrency|min|max|floor
// N, show log [NAME [N]], log connect FACILITY, [no] log
// enable|disable|debug FACILITY, show conf PATH, configure terminal (ls, cd,
// section, no section, set, write file|terminal|memory), configure reload,
// show hearts, show incidents [N], crash [LOOP], hang [POOL] LOOP, restart,
// shutdown. Commands with output accept --json. Those acting on the process
// use Options.Runtime, which the runtime fills.
//
// # Threads and must-not-block rules
//
// Each session runs on its own goroutine, one command at a time, labelled
// (runtime/pprof) mtev.console=<session> and mtev.console.command=<command>
// while the command runs, so a goroutine dump names a stuck command; a command
// may block (log connect waits for a key) without affecting other sessions,
// but it should watch Session.Context, which ends when the client leaves or
// the server shuts down. Commands must not run on an eventer loop. Register
// and Tree.Register are safe for concurrent use but are meant for init
// functions. Shutdown closes every connection and waits for the sessions.
package console
