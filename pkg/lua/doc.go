// Package lua embeds Lua (github.com/yuin/gopher-lua, Lua 5.1) in the
// runtime as libmtev does: lua_general runs a Lua function on the event
// loops, lua_web serves REST routes written in Lua, and the mtev module
// gives scripts logging, timers, sockets, an HTTP client, JSON, the
// configuration and values shared across states.
//
// # States, loops and coroutines
//
// A State is one gopher-lua state bound to one eventer.Loop. Everything
// Lua does, it does in that loop's callbacks: each function runs as a
// coroutine, and the calls that would wait (mtev.sleep, mtev.waitfor,
// socket connect/read/write, mtev.http_request, mtev.sh) yield the
// coroutine instead, arranging for the loop to resume it with the result:
// a timer, the descriptor's readiness on the loop's epoll, or a goroutine
// whose result is posted back to the loop. So a thousand sleeping
// coroutines cost a thousand timers, and the loop's heart keeps beating.
// Yielding calls work in the coroutines this package schedules (the
// module's function, lua_web handlers, mtev.coroutine_spawn); inside a
// coroutine the script made itself with coroutine.create they raise an
// error.
//
// lua_general (General) makes one state on loop 0 of the default pool, or
// one per loop with concurrent; lua_web (Web) one per loop of each pool a
// mount uses, and serves each request on the next loop of its pool.
//
// # The watchdog reaches into Lua
//
// Each resume runs under a deadline: the loop pool's heart timeout minus
// Options.Margin (2 s, as libmtev), but never less than half the timeout
// (libmtev's floor of 1 µs would interrupt everything on a loop whose
// timeout is at most 2 s), or interrupt_time when set. A timer armed
// around the resume cancels the context gopher-lua checks between
// instructions (LState.SetContext); the coroutine ends with an
// *InterruptError naming script, file:line and elapsed time, which is
// logged to "error/lua" and reported through Options.OnStall (Host.Report)
// as a Stall with source "lua". The state stays usable and the process is
// not killed. A Lua error cannot catch the interruption: pcall returns,
// and the next instruction raises it again until the resume ends. Code
// stuck inside a Go call (not between Lua instructions) is not
// interrupted; its loop's heart stalls and the watchdog acts.
//
// # Threads and must-not-block rules
//
//   - NewState, State.Post, State.Call and State.Close may be called from
//     any goroutine; every other State method runs on the state's loop.
//     Close waits for the loop to release the state: call it before the
//     eventer stops, and never on the state's own loop.
//   - Lua code must not block: a loop runs one state's coroutines one at a
//     time, and the loop's other callbacks wait while Lua runs.
//   - Options.OnStall and Host.Report are called on the loop and must not
//     block.
//   - Shared is safe from any goroutine: values are copied in and out.
//   - General and Web: Config, then Init, then PostInit, from one
//     goroutine; Close after. Web.Handler's http.Handler is safe from any
//     goroutine (net/http's) and waits for the Lua handler on the loop.
//
// # Module host
//
// General and Web implement module.Generic (Config, Init, PostInit) over a
// Host declared here with module.Host's fields, so that this package does
// not import the module registry; the runtime copies one into the other.
package lua
