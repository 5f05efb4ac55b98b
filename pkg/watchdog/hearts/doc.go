// Package hearts is the shared-memory heart table between the supervisor
// (the parent) and the process it watches (the child), and the parent's
// monitor of that table.
//
// # Roles
//
// The parent calls Create, which makes a sealed memfd, maps it MAP_SHARED and
// writes the header. It passes the returned *os.File to the child in
// exec.Cmd.ExtraFiles and names the descriptor number in the environment
// variable MTEV_HEARTS_FD (EnvFD). Before every start but the first it calls
// Reset, which frees all slots and increments the start count.
//
// The child calls OpenFromEnv (ErrNotSupervised when MTEV_HEARTS_FD is unset)
// and creates one Heart per event loop with NewHeart, then calls Beat on
// every pass of the loop. Beat is one atomic add to shared memory: no system
// call, no allocation, no lock. Hearts can be disabled and enabled one by one
// or all at once (DisableAll, for long start-up work), their timeout can be
// overridden, and Ready declares that start-up is complete. Every child
// method is a no-op on a nil *Table and a nil *Heart, so code that runs
// unsupervised keeps nil values and calls them anyway. *Heart satisfies
// interface{ Beat() }.
//
// The parent's Monitor reads the table. It owns no goroutine and is not safe
// for concurrent use: the supervisor's loop calls Check(now) every
// PollInterval() and acts on the Events it returns; status requests go
// through the same loop (Hearts).
//
// # Deadlines
//
// The parent remembers, per heart, when it last saw the ticker change; the
// age of a heart is the time since then. A heart that has beaten at least
// once has two deadlines: soft at its timeout (SoftStall: capture a trace,
// keep running) and hard at timeout + Grace (HardStall: capture, kill,
// restart). A heart that has never beaten is watched too, unlike in libmtev:
// once its age passes the start-up deadline (Startup, or its timeout if
// longer) it is a StartupStall. Optionally the child itself must create a
// heart (RequireHeart) or declare readiness (RequireReady) by the start-up
// deadline, counted from the child's start. Each event fires once per stall
// episode; a beat ends the episode and re-arms the heart. A disabled heart,
// or any heart while DisableAll is in effect, is not reported and its
// deadlines restart when it is enabled again.
//
// # Poll interval
//
// A stall is detected at most one poll interval after its deadline, so the
// interval bounds the detection overshoot. PollInterval is the smallest
// timeout among the active hearts divided by 20, clamped to [1 ms, 77 ms]:
// the overshoot stays under 5% of the timeout (the same ratio libmtev uses
// to cap its loops' sleep), 77 ms is libmtev's fixed period and is reached
// from timeouts of 1.54 s up, and 1 ms keeps the parent's cost negligible
// (one pass reads 128 bytes per slot, a few microseconds for 1024 slots)
// even for very short timeouts. At libmtev's default 5 s timeout this is
// libmtev's own 77 ms; at a 100 ms timeout it is 5 ms. While no heart is
// in use the interval is IdlePollInterval (1 s): a heart is seen at most a
// second after its creation, and its clock starts then.
//
// # Layout (version 1.0)
//
// All integers are in host byte order; 64-bit fields sit at offsets that
// are multiples of 8 from the page-aligned start of the mapping, so no
// 64-bit atomic can straddle a cache line (a split lock costs about five
// orders of magnitude). The slot size is a multiple of 64 bytes and slots
// start on a 64-byte boundary, so no two hearts share a cache line.
//
//	header, 64 bytes at offset 0
//	   0  uint64  magic "MTHRT1\0\0"
//	   8  uint32  major layout version (1)
//	  12  uint32  minor layout version (0)
//	  16  uint32  slot count
//	  20  uint32  slot size in bytes (128; a multiple of 64)
//	  24  uint32  offset of slot 0 (64)
//	  28  uint32  reserved
//	  32  uint64  start count: children started before this one (atomic)
//	  40  uint32  ready: 1 once the child declared readiness (atomic)
//	  44  uint32  all-disabled: 1 while DisableAll is in effect (atomic)
//	  48  16 bytes reserved
//
//	slot i, slot-size bytes at offset 64 + i*slot-size
//	   0  uint64  ticker, incremented by every beat (atomic)
//	   8  int64   timeout in nanoseconds; 0 = the parent's default (atomic)
//	  16  uint32  state: 0 free, 1 being claimed, 2 on, 3 disabled (atomic)
//	  20  uint32  thread id (gettid) of the beating thread (atomic)
//	  24  uint32  generation: odd while the child rewrites the slot (atomic)
//	  28  36 bytes reserved
//	  64  64 bytes name, NUL-padded, at most 63 bytes of [A-Za-z0-9:/_-],
//	      written and read as eight atomic uint64 (little-endian hosts)
//
// A child claims a slot by compare-and-swap of state from free to being
// claimed, makes the generation odd, writes ticker, timeout, thread id and
// name, makes the generation even and sets the state on. The parent reads a
// slot only when its generation is even and unchanged across the read. A
// reader refuses a table whose major version differs from its own
// (ErrVersion, naming both versions); minor versions only use reserved space
// or grow the slot, and are read with the stride in the header. The parent
// never re-reads the layout fields after Create and sanitizes names it
// reads, so a misbehaving child cannot make it read out of bounds; the memfd
// is sealed against resizing, so the child cannot make the parent fault.
package hearts
