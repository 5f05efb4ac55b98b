package eventer

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Interest is a set of readiness conditions on a descriptor.
type Interest uint32

// Readiness conditions, as libmtev's READ, WRITE and EXCEPTION masks.
const (
	Read Interest = 1 << iota
	Write
	// Exception is always reported, whether asked for or not: hang-up or
	// error on the descriptor.
	Exception
)

func (i Interest) String() string {
	var b strings.Builder
	for _, c := range []struct {
		bit Interest
		ch  byte
	}{{Read, 'r'}, {Write, 'w'}, {Exception, 'e'}} {
		if i&c.bit != 0 {
			b.WriteByte(c.ch)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// epollBits maps an interest to epoll events. EPOLLRDHUP goes with read
// interest only: it is level-triggered, so a descriptor whose peer has shut
// its side down would otherwise wake a loop that is not reading it on every
// iteration, and the loop would spin.
func epollBits(i Interest) uint32 {
	var ev uint32
	if i&Read != 0 {
		ev |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if i&Write != 0 {
		ev |= unix.EPOLLOUT
	}
	return ev
}

// FDFunc handles readiness of a watched descriptor. It runs on the owning
// loop and does the I/O itself (Accept, Read, Write, Close), which must not
// block: the descriptor is non-blocking and a call that would block returns
// an error matching ErrWouldBlock.
type FDFunc func(f *FD, ready Interest)

// FD is a descriptor watched by a loop. Its I/O methods make the raw system
// call and are meant for the loop's callbacks; SetInterest and Close may be
// called from any goroutine.
type FD struct {
	loop     *Loop
	fd       int
	cb       *callback
	fn       FDFunc
	interest Interest // loop-owned after registration
	conn     any      // keeps a watched net.Conn (and its fd) alive
	closed   atomic.Bool
	removed  bool // loop-owned
}

// Fd returns the descriptor number.
func (f *FD) Fd() int { return f.fd }

// Loop returns the loop that owns the descriptor.
func (f *FD) Loop() *Loop { return f.loop }

// Watch registers fd with the loop for the given interest and makes it
// non-blocking; fn runs on the loop when fd is ready. Once Watch succeeds the
// FD owns fd: Close closes it, as does stopping the loop. On error the caller
// still owns fd.
func (l *Loop) Watch(name string, fd int, interest Interest, fn FDFunc) (*FD, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("eventer: watch %q fd %d: %w", name, fd, err)
	}
	return l.watch(name, fd, interest, fn, nil)
}

// WatchConn watches the descriptor under a net.Conn, net.Listener or any
// other syscall.Conn. The callback must use the FD's methods for I/O, not the
// conn's (those would park the loop). Close closes the conn.
func (l *Loop) WatchConn(name string, c syscall.Conn, interest Interest, fn FDFunc) (*FD, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("eventer: watch %q: %w", name, err)
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return nil, fmt.Errorf("eventer: watch %q: %w", name, err)
	}
	return l.watch(name, fd, interest, fn, c)
}

func (l *Loop) watch(name string, fd int, interest Interest, fn FDFunc, conn any) (*FD, error) {
	f := &FD{loop: l, fd: fd, cb: l.pool.callback(name), fn: fn, interest: interest, conn: conn}
	ev := unix.EpollEvent{Events: epollBits(interest), Fd: int32(fd)}
	err := l.ctl(func() error { return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev) },
		func() { l.fds[fd] = f })
	if err != nil {
		return nil, fmt.Errorf("eventer: watch %q fd %d: %w", name, fd, err)
	}
	return f, nil
}

// ctl runs a system call on the loop's epoll instance while the loop cannot
// be shutting down, then queues the matching change of the loop's own state.
// An event that arrives before the loop has applied the change is dropped and
// reported again on the next wait (epoll is level-triggered here).
func (l *Loop) ctl(sys func() error, apply func()) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped || l.epfd < 0 {
		return ErrStopped // stopped, or not started yet
	}
	if err := sys(); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	l.inbox = append(l.inbox, posted{fn: apply, internal: true})
	l.pending.Add(1)
	l.wakeLocked()
	return nil
}

// SetInterest changes what the loop waits for on the descriptor.
func (f *FD) SetInterest(i Interest) error {
	if f.closed.Load() {
		return fmt.Errorf("eventer: fd %d: %w", f.fd, ErrClosed)
	}
	l := f.loop
	ev := unix.EpollEvent{Events: epollBits(i), Fd: int32(f.fd)}
	err := l.ctl(func() error { return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, f.fd, &ev) },
		func() { f.interest = i })
	if err != nil {
		return fmt.Errorf("eventer: fd %d: set interest: %w", f.fd, err)
	}
	return nil
}

// Close stops watching the descriptor and closes it (or its conn). Once
// Close has been called no callback for the descriptor starts; one already
// running on the loop finishes. The descriptor is closed on the loop, before
// its next wait. Close is idempotent.
func (f *FD) Close() error {
	if !f.closed.CompareAndSwap(false, true) {
		return nil
	}
	l := f.loop
	// A stopped loop has released its descriptors already.
	_ = l.ctl(func() error { return nil }, func() { f.release(l) })
	return nil
}

// release removes the descriptor from the loop and closes it. Loop-owned.
func (f *FD) release(l *Loop) {
	if f.removed {
		return
	}
	f.removed = true
	f.closed.Store(true)
	if l.fds[f.fd] == f {
		delete(l.fds, f.fd)
	}
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, f.fd, nil)
	if c, ok := f.conn.(interface{ Close() error }); ok {
		c.Close()
	} else {
		unix.Close(f.fd)
	}
}

func ioErr(op string, fd int, err error) error {
	if errors.Is(err, unix.EAGAIN) {
		return ErrWouldBlock
	}
	return fmt.Errorf("eventer: %s fd %d: %w", op, fd, err)
}

// Read reads from the descriptor without blocking. It returns 0, nil at end
// of stream and ErrWouldBlock when nothing is available.
func (f *FD) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(f.fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, ioErr("read", f.fd, err)
		}
		return n, nil
	}
}

// Write writes to the descriptor without blocking and returns how much was
// written; ErrWouldBlock when nothing could be.
func (f *FD) Write(p []byte) (int, error) {
	for {
		n, err := unix.Write(f.fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, ioErr("write", f.fd, err)
		}
		return n, nil
	}
}

// Accept accepts one connection on a listening descriptor. The new
// descriptor is non-blocking and close-on-exec; the caller watches it (on
// this loop or another) or closes it.
func (f *FD) Accept() (int, unix.Sockaddr, error) {
	for {
		nfd, sa, err := unix.Accept4(f.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			return -1, nil, ioErr("accept", f.fd, err)
		}
		return nfd, sa, nil
	}
}

// compile-time check that the usual conns qualify.
var _ syscall.Conn = (*net.TCPConn)(nil)
