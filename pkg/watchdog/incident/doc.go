// Package incident stores and reads incident records: a Store owns the
// journal and the artifact directories of a state directory, and is what
// the supervisor writes through and what the CLI (`mtev-supervise
// traces`), the tests and the HTTP endpoint read through.
//
// # Layout
//
//	<state>/journal/                      the journal (package journal)
//	<state>/artifacts/<service>-<pid>-<ns>/  files kept with one record
//
// A record's ID is its journal sequence number, in decimal. The artifact
// directory of a record is named from its service, pid and time (Dir),
// so that a capture can fill it before the record has an ID.
//
// # Who owns a record
//
// An incident record is written by one goroutine at a time, and handed
// on, never shared:
//
//  1. the supervisor's loop opens it (newRecord) when it finds the stall
//     or the death, and fills what the loop knows (pid, start count, log
//     tail, exit status, stall);
//  2. for a stall, the capture goroutine of that incident owns it while
//     the capture chain (package capture) fills goroutines, threads,
//     resources and artifacts, and hands it back to the loop
//     (captureDone);
//  3. the loop sets the action (the policy function decide) and hands it
//     to the journal writer goroutine;
//  4. the journal writer parses crash output or a core file, sets the
//     fingerprint, applies the same-crash limit, and appends it through
//     Store.Append, which sets its ID.
//
// After Append the record is read-only: the Recorded event carries it.
//
// # Threads
//
// Append and Close are for one goroutine (the journal writer). Readers
// are independent of the writer and of each other; a Reader is for one
// goroutine.
package incident
