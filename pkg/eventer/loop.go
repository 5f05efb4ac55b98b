package eventer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Heart is what a loop beats: once per iteration and after every callback.
// Beat must be cheap and must not block (an atomic store is the intent).
// pkg/watchdog's heart satisfies it.
type Heart interface{ Beat() }

// HeartFunc makes the hearts of a pool: one per loop, named
// "e:<pool>/<index>", with the pool's timeout. It is called on the loop's own
// goroutine, which already carries the pprof label "eventer.loop" set to the
// same name; with PoolOptions.LockOSThread that goroutine is also locked to
// its thread, so an implementation may record the calling thread's id
// (unix.Gettid) as the thread to blame on a stall.
type HeartFunc func(name string, timeout time.Duration) Heart

// maxSleep caps one wait for events whatever the heart timeout, as libmtev
// does (200 ms).
const maxSleep = 200 * time.Millisecond

// noProbes turns the runtime/trace probes off; set only by the benchmark
// that measures what they cost.
var noProbes bool

// epoch anchors monotonic readings: mono() is nanoseconds since it.
var epoch = time.Now()

func mono() int64 { return int64(time.Since(epoch)) }

// posted is one closure waiting in a loop's inbox.
type posted struct {
	fn func()
	cb *callback // nil for internal closures
	// internal marks the loop's own bookkeeping (descriptor and timer
	// tables), which still runs when the loop shuts down.
	internal bool
}

// Loop is one event loop: a goroutine (with PoolOptions.LockOSThread, one
// locked to its own OS thread) that owns its timers and descriptors and runs
// their callbacks one at a time. Methods are safe from any goroutine unless
// they say otherwise.
type Loop struct {
	pool  *Pool
	index int
	name  string // "e:<pool>/<index>"

	epfd   int
	wakefd int
	mode   waitMode
	epFile *os.File        // waitNetpoll: the epoll fd, registered with the netpoller
	epRaw  syscall.RawConn // waitNetpoll

	tid   atomic.Int64
	beats atomic.Uint64
	heart Heart

	// Inbox: closures posted from any goroutine.
	mu      sync.Mutex
	inbox   []posted
	spare   []posted
	pending atomic.Int64
	stopped bool // under mu: no more posts accepted

	sleeping atomic.Bool
	wakeSent atomic.Bool
	stopping atomic.Bool
	done     chan struct{}

	// Owned by the loop goroutine.
	timers timerHeap
	fds    map[int]*FD
	events []unix.EpollEvent
	region *trace.Region // the running callback's, while tracing

	// What runs now, for snapshots of a stuck loop.
	curStart atomic.Int64 // mono() at callback start, 0 when idle
	curCB    atomic.Pointer[callback]

	cycle     latency // busy time of one iteration (excluding the wait)
	postCB    *callback
	callbacks atomic.Uint64
	slow      atomic.Uint64
}

// Name returns the loop's name, "e:<pool>/<index>", which is also its heart's.
func (l *Loop) Name() string { return l.name }

// Index returns the loop's index in its pool.
func (l *Loop) Index() int { return l.index }

// Pool returns the pool the loop belongs to.
func (l *Loop) Pool() *Pool { return l.pool }

// ThreadID returns the Linux thread id (LWP) the loop is locked to: the
// thread to blame when the loop's heart stalls. It is 0 before the loop has
// started and for loops not locked to a thread (PoolOptions.LockOSThread),
// which move between threads; find those by their goroutine's pprof label
// "eventer.loop", whose value is the loop's (and its heart's) name.
func (l *Loop) ThreadID() int { return int(l.tid.Load()) }

// Beats returns how many times the loop has beaten its heart.
func (l *Loop) Beats() uint64 { return l.beats.Load() }

func newLoop(p *Pool, index int) *Loop {
	return &Loop{
		pool:   p,
		index:  index,
		name:   fmt.Sprintf("e:%s/%d", p.name, index),
		epfd:   -1,
		wakefd: -1,
		done:   make(chan struct{}),
		fds:    map[int]*FD{},
		events: make([]unix.EpollEvent, 128),
		postCB: p.callback("post"),
	}
}

// open creates the loop's epoll instance and wake-up eventfd.
func (l *Loop) open() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("eventer: start %s: epoll_create1: %w", l.name, err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return fmt.Errorf("eventer: start %s: eventfd: %w", l.name, err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &ev); err != nil {
		unix.Close(wfd)
		unix.Close(epfd)
		return fmt.Errorf("eventer: start %s: epoll_ctl: %w", l.name, err)
	}
	l.mode = l.pool.opts.wait
	if l.mode == waitAuto {
		l.mode = waitNetpoll
		if l.pool.opts.LockOSThread {
			l.mode = waitBlocking
		}
	}
	if l.mode == waitNetpoll {
		// A non-blocking epoll fd is pollable: os.NewFile registers it
		// with the netpoller and owns it from here on.
		if err := unix.SetNonblock(epfd, true); err != nil {
			unix.Close(wfd)
			unix.Close(epfd)
			return fmt.Errorf("eventer: start %s: %w", l.name, err)
		}
		l.epFile = os.NewFile(uintptr(epfd), l.name)
		rc, err := l.epFile.SyscallConn()
		if err == nil {
			// Fails unless the netpoller took the fd.
			err = l.epFile.SetReadDeadline(time.Time{})
		}
		if err != nil {
			unix.Close(wfd)
			l.epFile.Close()
			return fmt.Errorf("eventer: start %s: epoll fd not pollable: %w", l.name, err)
		}
		l.epRaw = rc
	}
	l.mu.Lock()
	l.epfd, l.wakefd = epfd, wfd
	l.mu.Unlock()
	return nil
}

// Post runs fn on the loop, after the callbacks already queued. It returns
// ErrStopped once the loop is stopping.
func (l *Loop) Post(fn func()) error {
	return l.post(posted{fn: fn, cb: l.postCB})
}

func (l *Loop) post(p posted) error {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return fmt.Errorf("eventer: post to %s: %w", l.name, ErrStopped)
	}
	l.inbox = append(l.inbox, p)
	l.pending.Add(1)
	l.wakeLocked()
	l.mu.Unlock()
	return nil
}

// wakeLocked interrupts the loop's wait, if it waits, with one eventfd
// write. l.mu is held and the loop has not stopped, so the eventfd is open.
func (l *Loop) wakeLocked() {
	if l.sleeping.Load() && l.wakeSent.CompareAndSwap(false, true) {
		if l.mode == waitNetpoll {
			// Expiring the deadline readies the parked loop goroutine
			// directly, without a system call or a netpoll round.
			l.epFile.SetReadDeadline(expired)
			return
		}
		l.kick()
	}
}

// expired is a deadline long past.
var expired = time.Unix(1, 0)

func (l *Loop) kick() {
	one := [8]byte{1}
	unix.Write(l.wakefd, one[:])
}

// run is the loop goroutine. ready receives nil once the loop runs, or the
// reason it could not start.
func (l *Loop) run(newHeart HeartFunc, timeout time.Duration, ready chan<- error) {
	defer close(l.done)
	if l.pool.opts.LockOSThread {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		l.tid.Store(int64(unix.Gettid()))
	}
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("eventer.loop", l.name)))
	if newHeart != nil {
		l.heart = newHeart(l.name, timeout)
	}
	if err := l.open(); err != nil {
		l.mu.Lock()
		l.stopped = true
		l.mu.Unlock()
		ready <- err
		return
	}
	ready <- nil

	sleep := maxSleep
	if timeout > 0 && timeout/20 < sleep {
		sleep = timeout / 20
	}
	var waitNs int64
	for {
		start := mono()
		l.beat()
		if l.stopping.Load() {
			break
		}
		l.drain()
		now := l.runTimers()

		wait := sleep
		if next, ok := l.nextTimer(); ok {
			if d := time.Duration(next - now); d < wait {
				wait = d
			}
		}
		if wait > 0 && l.mode == waitNetpoll {
			// Armed before "sleeping" is published, so that a poster's
			// expiring of the deadline always comes after it.
			l.epFile.SetReadDeadline(time.Now().Add(wait))
		}
		l.sleeping.Store(true)
		if l.pending.Load() > 0 || l.stopping.Load() || wait <= 0 {
			wait = 0
		}
		w0 := mono()
		n, err := l.wait(wait)
		w1 := mono()
		l.sleeping.Store(false)
		if l.mode == waitNetpoll {
			l.wakeSent.Store(false)
		}
		waitNs = w1 - w0
		l.beat()
		if err != nil {
			// EINTR; the epoll fd is ours and valid, so nothing else
			// is expected. Either way: no events this time.
			n = 0
		}
		for i := 0; i < n; i++ {
			ev := l.events[i]
			fd := int(ev.Fd)
			if fd == l.wakefd {
				var buf [8]byte
				unix.Read(l.wakefd, buf[:])
				l.wakeSent.Store(false)
				continue
			}
			f := l.fds[fd]
			if f == nil || f.closed.Load() {
				continue
			}
			var ready Interest
			if ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) != 0 {
				ready |= Read
			}
			if ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				ready |= Write
			}
			if ev.Events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				ready |= Exception
			}
			ready &= f.interest | Exception
			if ready == 0 {
				continue
			}
			t0 := l.begin(f.cb)
			f.fn(f, ready)
			l.end(f.cb, t0)
		}
		if n == len(l.events) && len(l.events) < 4096 {
			l.events = make([]unix.EpollEvent, 2*len(l.events))
		}
		l.cycle.record(time.Duration(mono() - start - waitNs))
	}
	l.shutdown()
}

// poll collects the events ready now without blocking, by a raw system
// call the scheduler does not see.
func (l *Loop) poll() int {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, uintptr(l.epfd),
		uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	if e != 0 {
		return 0
	}
	return int(r)
}

// wait collects ready events, waiting at most d.
func (l *Loop) wait(d time.Duration) (int, error) {
	ms := int((d + time.Millisecond - 1) / time.Millisecond)
	switch {
	case d <= 0:
		return l.poll(), nil
	case l.mode == waitNetpoll:
		// The epoll fd is itself registered with Go's netpoller: the
		// goroutine parks until it is readable (some watched descriptor
		// is ready) or the deadline, armed by the caller, passes or is
		// expired by a poster.
		n := 0
		err := l.epRaw.Read(func(uintptr) bool {
			n = l.poll()
			return n > 0
		})
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, err
		}
		return n, nil
	}
	if !noPwait2.Load() {
		ts := unix.NsecToTimespec(int64(d))
		r, _, e := unix.Syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(l.epfd),
			uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)),
			uintptr(unsafe.Pointer(&ts)), 0, 0)
		switch e {
		case 0:
			return int(r), nil
		case unix.ENOSYS:
			noPwait2.Store(true)
		default:
			return 0, e
		}
	}
	return unix.EpollWait(l.epfd, l.events, ms)
}

// noPwait2 records that the kernel lacks epoll_pwait2 (before Linux 5.11):
// waits then round up to whole milliseconds.
var noPwait2 atomic.Bool

func (l *Loop) beat() {
	l.beats.Add(1)
	if l.heart != nil {
		l.heart.Beat()
	}
}

// call runs one callback, timing it, and beats the heart after it.
func (l *Loop) call(cb *callback, fn func()) {
	t0 := l.begin(cb)
	fn()
	l.end(cb, t0)
}

// begin and end bracket a callback: begin marks it as running (for
// snapshots of a stuck loop), end records its latency, beats the heart and
// reports it if slow.
//
// While an execution trace is being taken (runtime/trace), each callback
// runs inside a region "eventer-callback:<name>" (libmtev's
// eventer-callback-entry/-return probes); otherwise the probe costs one
// check of trace.IsEnabled.
func (l *Loop) begin(cb *callback) int64 {
	t0 := mono()
	l.curCB.Store(cb)
	l.curStart.Store(t0)
	if !noProbes && trace.IsEnabled() {
		l.region = trace.StartRegion(context.Background(), cb.probe)
	}
	return t0
}

func (l *Loop) end(cb *callback, t0 int64) {
	if l.region != nil {
		l.region.End()
		l.region = nil
	}
	l.curStart.Store(0)
	d := time.Duration(mono() - t0)
	cb.lat.record(d)
	l.callbacks.Add(1)
	l.beat()
	if th := l.pool.opts.SlowThreshold; th > 0 && d >= th {
		l.slow.Add(1)
		l.pool.reportSlow(SlowCallback{Pool: l.pool.name, Loop: l.index, Name: cb.name, Duration: d, At: time.Now()})
	}
}

// drain runs the closures posted so far.
func (l *Loop) drain() {
	if l.pending.Load() == 0 {
		return
	}
	l.mu.Lock()
	batch := l.inbox
	l.inbox = l.spare[:0]
	l.pending.Store(0)
	l.mu.Unlock()
	for i := range batch {
		p := &batch[i]
		if p.internal {
			p.fn()
		} else {
			l.call(p.cb, p.fn)
		}
		*p = posted{}
	}
	l.spare = batch[:0]
}

// shutdown runs on the loop goroutine once it stops: it refuses further
// posts, closes every descriptor still watched and releases the epoll fds.
func (l *Loop) shutdown() {
	l.mu.Lock()
	l.stopped = true
	batch := l.inbox
	l.inbox = nil
	l.pending.Store(0)
	l.mu.Unlock()
	for _, p := range batch {
		if p.internal {
			p.fn()
		}
	}
	for _, f := range l.fds {
		f.release(l)
	}
	clear(l.fds)
	for _, t := range l.timers {
		t.index = -1
	}
	l.timers = nil
	unix.Close(l.wakefd)
	if l.epFile != nil {
		l.epFile.Close()
	} else {
		unix.Close(l.epfd)
	}
}

// stop asks the loop to end and waits for it. The caller must not be the
// loop itself.
func (l *Loop) stop() {
	l.stopping.Store(true)
	// The loop checks stopping before each wait; a wake-up covers the case
	// where it is already waiting.
	l.mu.Lock()
	if !l.stopped && l.wakefd >= 0 {
		l.kick()
	}
	l.mu.Unlock()
	<-l.done
}
