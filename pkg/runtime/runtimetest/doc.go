// Package runtimetest gives an application's own tests what a supervisor
// gives a child that links pkg/runtime: a heart table, a dump channel and
// a stall report channel, with the supervisor's view of each, so that a
// test runs the app in its own process (runtime.RunAttached) and checks
// that its loops beat, that it answers dumps and what stalls it reports,
// without a supervisor process.
//
//	sup := runtimetest.New(t, runtimetest.Options{})
//	stop := sup.Start(t, app)
//	sup.WaitReady(t)
//	st := <-sup.Stalls()       // what the app reported with ReportStall
//	res, err := sup.Dump(ctx, t.TempDir())
//	if err := stop(); err != nil { ... }
//
// # Contract
//
// A Supervisor is for one app run: New makes the heart table, the dump
// channel pair and the report channel pair, Start runs the app with
// runtime.RunAttached on a goroutine of its own and returns a stop
// function that cancels it, waits for it and returns its error. Every
// file and goroutine it made is released by the test's cleanup, so a
// failing test leaks nothing. Its methods may be called from any
// goroutine. Stalls is one buffered channel for one reader: a report that
// finds it full is dropped, and ReportStall in the app never blocks, as
// with a real supervisor.
package runtimetest
