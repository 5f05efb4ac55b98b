// Package eventer runs a service's work on pools of event loops that the
// watchdog can see, in the manner of libmtev's eventer: timers, descriptor
// readiness, callbacks posted across loops, and job queues whose completions
// come back to the loop that owns them, all measured in log-linear latency
// histograms.
//
// # Loops and pools
//
// A Pool is N loops. Each Loop is one goroutine that owns its timers and
// descriptors and runs their callbacks one at a time; it carries the pprof
// label "eventer.loop" with its name, "e:<pool>/<index>", so that a goroutine
// dump shows which loop is stuck. With PoolOptions.LockOSThread the goroutine
// is locked to an OS thread of its own, as libmtev's loops are, and ThreadID
// reports that thread's LWP. A System holds the default pool ("default",
// 1+4×NumCPU loops unless configured), named pools with their own concurrency
// and heart timeout (libmtev's loop_<name>=concurrency,timeout), and the job
// queues, among them the built-in "default_queue" (5 workers).
//
// Each loop beats its Heart at the top of every iteration, after every wait
// and after every callback, and never waits longer than the smaller of 200 ms
// and a twentieth of its pool's timeout; so its heart stalls only when a
// callback hangs, and exactly that loop's heart stalls. Hearts come from
// Options.NewHeart, one per loop, named like the loop and created on the
// loop's own goroutine.
//
// # Mechanism: one epoll instance per loop
//
// Each loop owns an epoll instance (golang.org/x/sys/unix), level-triggered,
// with an eventfd for wake-ups. Descriptors, raw or under a net.Conn or
// net.Listener, are watched by one loop, and their callbacks do the
// non-blocking accept, read, write and close themselves. An idle loop waits
// in one of two ways:
//
//   - by default, the epoll fd is itself registered with Go's netpoller
//     (os.NewFile, RawConn.Read) and the loop goroutine parks there until a
//     watched descriptor is ready or its deadline passes; a post wakes it by
//     expiring that deadline, which readies the goroutine without a system
//     call. The goroutine then collects the ready events with a
//     non-blocking epoll_wait.
//   - with LockOSThread, the loop's thread blocks in epoll_pwait2
//     (nanosecond timeouts; epoll_wait, rounded up to milliseconds, before
//     Linux 5.11) and a post wakes it through the eventfd.
//
// The choice was made by measurement: BenchmarkTimers, BenchmarkPost and
// BenchmarkEcho run every candidate side by side ("eventer" is the
// default, "eventer-locked" the locked loop, "eventer-blocking" and
// "eventer-locked-netpoll" the other two combinations, "netpoll-handoff"
// the design without a per-loop epoll). On the 2-core machine used, shared
// with other work, single figures moved by ±30% between runs; what held:
//
//   - Go's netpoller through syscall.RawConn with one parked goroutine per
//     descriptor handing each readiness to the loop ("netpoll-handoff")
//     echoed at 0.6–1.1× the goroutine-per-connection net server, below
//     every per-loop epoll variant in every run. Rejected.
//   - Per-loop epoll variants echoed at 0.7–2.2× the net server depending
//     on the run, with no stable order among them, and fired timers at
//     2–4× the rate of time.AfterFunc. In the last full run the default
//     echoed at 2.2× the net server and 1.7× gnet, and fired timers at 3.1×
//     time.AfterFunc.
//   - Cross-loop posts separated them. Under CPU contention the default's
//     median post latency was about 1.5–2.5 µs against 9–16 µs for every
//     variant that blocks a thread or locks the goroutine, since a wake-up
//     then has to get a sleeping OS thread scheduled. On an idle machine
//     the locked, blocking loop did best (about 2.2 µs against 3.6 µs).
//
// Services share machines, so the default is the design that holds up under
// contention; LockOSThread keeps libmtev's one-thread-per-loop model for
// those who want the LWP.
//
// # Threading and must-not-block rules
//
//   - Callbacks (timers, descriptor readiness, posted closures, job
//     completions) run on their loop, one at a time. They must not block:
//     a blocked callback stalls its loop and, by design, its heart. Hand slow
//     or blocking work to a Queue.
//   - Every method is safe from any goroutine unless its comment says
//     otherwise. Post, AfterFunc, Every, Watch, SetInterest and Close take
//     effect on the loop, in the order they were made from one goroutine.
//   - Pool.Stop, System.Stop and Queue.Close wait for their goroutines and
//     must not be called from a callback or a job. They are idempotent.
//     Stopping a loop closes the descriptors it still watches and drops the
//     closures still posted to it.
//   - Heart.Beat, OnSlow and job Done callbacks must not block.
//
// # Job queues
//
// A Queue runs Job.Work on worker goroutines started on demand up to its
// concurrency (adjustable within [Min, Max]); idle workers above Floor exit
// after IdleTimeout. A Backlog limit makes Add wait and TryAdd fail at once
// with ErrBacklogFull. Waiting jobs are taken FIFO or LIFO within a subqueue,
// and subqueues are served round-robin. A job's Timeout cancels its context;
// Go cannot kill a goroutine, so Work must watch ctx. Cleanup runs on the
// worker, then Done on the job's Loop (libmtev's WORK, CLEANUP, completion).
//
// # Measurement
//
// Callback latency (per callback name, per pool), loop cycle time (busy time
// of one iteration, without the wait) and queue wait and run time are
// recorded in histograms with circonusllhist's bins, by one atomic add per
// sample and no lock, and converted to circonusllhist.Histogram when read.
// System.Snapshot returns a JSON-friendly view of pools, loops (thread id,
// beats, the callback running now), timers, descriptors and queues with their
// histograms and recent slow callbacks; a stuck loop is shown as
// unresponsive instead of blocking the snapshot. The histograms are
// pkg/stats histograms: with Options.Stats they are registered in a stats
// registry under libmtev's names (see stats.go), where a reset empties them.
//
// # Probes
//
// While an execution trace is being taken (runtime/trace), every callback
// runs in a region "eventer-callback:<name>" and every job's work in a task
// "jobq-work:<queue>" (libmtev's DTrace probes eventer-callback-entry and
// -return); with no trace running a probe is one trace.IsEnabled check
// (BenchmarkProbeCost, BenchmarkProbeOverhead).
//
// # Configuration
//
// ParseConfig reads libmtev's <eventer><config> keys (concurrency,
// loop_<name>, jobq_<name>, default_queue_threads, ...) into Options.
package eventer
