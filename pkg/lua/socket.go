package lua

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	glua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
)

// sock is an mtev.eventer object: a TCP socket watched by the state's loop.
// Its I/O yields the calling coroutine until the loop sees the descriptor
// ready. All of it runs on the loop.
type sock struct {
	s      *State
	family int
	raw    int         // the descriptor before Watch
	fd     *eventer.FD // after connect
	buf    []byte      // read but not yet returned
	eof    bool
	err    error
	closed bool

	// The coroutine waiting on the socket, and for what.
	waiter   *task
	op       string // "connect", "read", "write"
	readN    int    // read(n): bytes wanted; 0 with readTerm
	readTerm []byte // read(terminator)
	recv     bool   // recv(n): whatever is there, up to readN
	out      []byte // write: what is left
	wrote    int
	timer    *eventer.Timer

	immediate []glua.LValue // a result reached without waiting
}

func (s *State) registerSocket() {
	L := s.L
	mt := L.NewTypeMetatable("mtev.eventer")
	L.SetField(mt, "__index", L.SetFuncs(L.NewTable(), map[string]glua.LGFunction{
		"connect": s.sockConnect,
		"read":    s.sockRead,
		"recv":    s.sockRecv,
		"write":   s.sockWrite,
		"send":    s.sockWrite,
		"close":   s.sockClose,
	}))
}

func checkSock(L *glua.LState) *sock {
	ud := L.CheckUserData(1)
	k, ok := ud.Value.(*sock)
	if !ok {
		L.ArgError(1, "mtev.eventer expected")
	}
	return k
}

// mtev.socket(address|'inet'|'inet6'[, 'tcp']) makes a TCP socket; the
// address only chooses the family.
func (s *State) luaSocket(L *glua.LState) int {
	addr := L.OptString(1, "inet")
	if typ := L.OptString(2, "tcp"); typ != "tcp" {
		L.ArgError(2, "only 'tcp' sockets are supported")
	}
	family := unix.AF_INET
	switch addr {
	case "inet":
	case "inet6":
		family = unix.AF_INET6
	default:
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			L.ArgError(1, "'inet', 'inet6' or an IP address expected")
		}
		if ip.Is6() && !ip.Is4In6() {
			family = unix.AF_INET6
		}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		L.Push(glua.LNil)
		L.Push(glua.LString("socket: " + err.Error()))
		return 2
	}
	k := &sock{s: s, family: family, raw: fd}
	ud := L.NewUserData()
	ud.Value = k
	ud.Metatable = L.GetTypeMetatable("mtev.eventer")
	// A socket the script drops without closing is closed when the state
	// is; gopher-lua has no __gc.
	s.socks = append(s.socks, k)
	L.Push(ud)
	return 1
}

// sock:connect(ip, port[, timeout]) returns 0, or -1 and the error.
func (s *State) sockConnect(L *glua.LState) int {
	k := checkSock(L)
	host := L.CheckString(2)
	port := L.CheckInt(3)
	timeout := L.OptNumber(4, 0)
	fail := func(msg string) int {
		L.Push(glua.LNumber(-1))
		L.Push(glua.LString(msg))
		return 2
	}
	if k.closed || k.fd != nil {
		return fail("connect: socket closed or already connected")
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fail("connect: " + host + ": an IP address is required")
	}
	var sa unix.Sockaddr
	if k.family == unix.AF_INET {
		if !ip.Is4() && !ip.Is4In6() {
			return fail("connect: " + host + ": not an IPv4 address")
		}
		sa = &unix.SockaddrInet4{Port: port, Addr: ip.Unmap().As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: port, Addr: ip.As16()}
	}
	t := s.taskOf(L, "connect")
	err = unix.Connect(k.raw, sa)
	if err != nil && !errors.Is(err, unix.EINPROGRESS) {
		return fail("connect: " + err.Error())
	}
	f, werr := s.loop.Watch("lua.socket "+host+":"+strconv.Itoa(port), k.raw, eventer.Write, k.ready)
	if werr != nil {
		return fail("connect: " + werr.Error())
	}
	k.fd = f
	k.raw = -1
	if err == nil {
		_ = f.SetInterest(0)
		L.Push(glua.LNumber(0))
		return 1
	}
	k.waiter, k.op = t, "connect"
	if timeout > 0 {
		k.timer, _ = s.loop.AfterFunc("lua.connect", time.Duration(float64(timeout)*float64(time.Second)), func() {
			k.timer = nil
			if k.waiter == t && k.op == "connect" {
				k.finish(glua.LNumber(-1), glua.LString("connect: timed out"))
			}
		})
	}
	return s.park(L, t)
}

// ready is the socket's readiness callback, on the loop.
func (k *sock) ready(f *eventer.FD, ready eventer.Interest) {
	if k.waiter == nil {
		if ready&eventer.Exception != 0 {
			// Hang-up with no one waiting: keep what can be read and
			// stop watching, or the loop would be told again and again.
			k.fill()
			k.release()
		}
		return
	}
	switch k.op {
	case "connect":
		v, err := unix.GetsockoptInt(f.Fd(), unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && v != 0 {
			err = unix.Errno(v)
		}
		if err != nil {
			k.finish(glua.LNumber(-1), glua.LString("connect: "+err.Error()))
			return
		}
		k.finish(glua.LNumber(0))
	case "read", "recv":
		k.tryRead()
	case "write":
		k.tryWrite()
	}
}

// fill reads what is available into buf; it records end of stream and
// errors, and reports whether anything was read.
func (k *sock) fill() bool {
	if k.fd == nil || k.eof || k.err != nil {
		return false
	}
	var tmp [16 << 10]byte
	got := false
	for {
		n, err := k.fd.Read(tmp[:])
		if n > 0 {
			k.buf = append(k.buf, tmp[:n]...)
			got = true
			if n == len(tmp) {
				continue
			}
			return got
		}
		switch {
		case errors.Is(err, eventer.ErrWouldBlock):
		case err != nil:
			k.err = err
		default:
			k.eof = true
		}
		return got
	}
}

// take returns what the pending read wants from buf, if it is there.
func (k *sock) take() ([]byte, bool) {
	switch {
	case k.recv:
		if len(k.buf) == 0 {
			return nil, false
		}
		n := min(k.readN, len(k.buf))
		return k.cut(n), true
	case k.readTerm != nil:
		if i := bytes.Index(k.buf, k.readTerm); i >= 0 {
			return k.cut(i + len(k.readTerm)), true
		}
	default:
		if len(k.buf) >= k.readN {
			return k.cut(k.readN), true
		}
	}
	return nil, false
}

func (k *sock) cut(n int) []byte {
	out := bytes.Clone(k.buf[:n])
	k.buf = k.buf[n:]
	if len(k.buf) == 0 {
		k.buf = nil
	}
	return out
}

// tryRead completes the pending read if it can: data, or at end of stream
// whatever is left (nothing: nil).
func (k *sock) tryRead() {
	for {
		if b, ok := k.take(); ok {
			k.done(glua.LString(b))
			return
		}
		if k.eof || k.err != nil || k.fd == nil {
			rest := k.buf
			k.buf = nil
			if len(rest) > 0 {
				k.done(glua.LString(rest))
			} else {
				k.done(glua.LNil)
			}
			return
		}
		if !k.fill() && !k.eof && k.err == nil {
			return // wait for readiness
		}
	}
}

func (k *sock) tryWrite() {
	for len(k.out) > 0 {
		n, err := k.fd.Write(k.out)
		k.wrote += max(n, 0)
		k.out = k.out[max(n, 0):]
		if errors.Is(err, eventer.ErrWouldBlock) {
			return
		}
		if err != nil {
			k.done(glua.LNumber(-1), glua.LString("write: "+err.Error()))
			return
		}
	}
	k.done(glua.LNumber(k.wrote))
}

// done ends the pending operation: resumes the waiter, or, when the
// operation completed without waiting, leaves the values for the caller.
func (k *sock) done(vals ...glua.LValue) {
	if k.waiter == nil {
		k.immediate = vals
		return
	}
	k.finish(vals...)
}

func (k *sock) finish(vals ...glua.LValue) {
	t := k.waiter
	k.waiter, k.op = nil, ""
	if k.timer != nil {
		k.timer.Stop()
		k.timer = nil
	}
	if k.fd != nil && !k.closed {
		_ = k.fd.SetInterest(0)
	}
	k.s.resume(t, vals...)
}

// start runs op now; if it cannot complete, the coroutine waits for the
// loop to report the descriptor ready for interest.
func (k *sock) start(L *glua.LState, op string, interest eventer.Interest, try func()) int {
	if k.fd == nil && (op == "write" || !k.eof) {
		L.Push(glua.LNil)
		L.Push(glua.LString(op + ": not connected"))
		return 2
	}
	if k.waiter != nil {
		L.RaiseError("%s: another coroutine is already waiting on this socket", op)
	}
	t := k.s.taskOf(L, op)
	k.immediate = nil
	try()
	if k.immediate != nil {
		vals := k.immediate
		k.immediate = nil
		for _, v := range vals {
			L.Push(v)
		}
		return len(vals)
	}
	k.waiter, k.op = t, op
	if err := k.fd.SetInterest(interest); err != nil {
		k.waiter, k.op = nil, ""
		L.Push(glua.LNil)
		L.Push(glua.LString(fmt.Sprintf("%s: %v", op, err)))
		return 2
	}
	return k.s.park(L, t)
}

// sock:read(n|terminator) returns n bytes, or up to and including the
// terminator; at end of stream what is left, or nil.
func (s *State) sockRead(L *glua.LState) int {
	k := checkSock(L)
	k.recv = false
	k.readTerm = nil
	switch v := L.CheckAny(2).(type) {
	case glua.LNumber:
		k.readN = int(v)
	case glua.LString:
		if len(v) == 0 {
			L.ArgError(2, "empty terminator")
		}
		k.readTerm = []byte(v)
	default:
		L.ArgError(2, "a byte count or a terminator expected")
	}
	return k.start(L, "read", eventer.Read, k.tryRead)
}

// sock:recv(n) returns what has arrived, at most n bytes, waiting for
// something if nothing has (nil at end of stream).
func (s *State) sockRecv(L *glua.LState) int {
	k := checkSock(L)
	k.recv, k.readTerm, k.readN = true, nil, L.CheckInt(2)
	return k.start(L, "recv", eventer.Read, k.tryRead)
}

// sock:write(data) returns the bytes written (all of them), or -1 and the
// error.
func (s *State) sockWrite(L *glua.LState) int {
	k := checkSock(L)
	k.out = []byte(L.CheckString(2))
	k.wrote = 0
	return k.start(L, "write", eventer.Write, k.tryWrite)
}

func (s *State) sockClose(L *glua.LState) int {
	checkSock(L).release()
	return 0
}

// release closes the descriptor; buffered data stays readable.
func (k *sock) release() {
	if k.closed {
		return
	}
	k.closed = true
	if t := k.waiter; t != nil {
		// Another coroutine closed the socket under this one's read,
		// write or connect: it gets an error, from a fresh callback.
		k.waiter, k.op = nil, ""
		if k.timer != nil {
			k.timer.Stop()
			k.timer = nil
		}
		k.s.wake(t, glua.LNil, glua.LString("socket closed"))
	}
	for i, x := range k.s.socks {
		if x == k {
			k.s.socks = append(k.s.socks[:i:i], k.s.socks[i+1:]...)
			break
		}
	}
	if k.fd != nil {
		_ = k.fd.Close()
		k.fd = nil
		k.eof = true
	}
	if k.raw >= 0 {
		_ = unix.Close(k.raw)
		k.raw = -1
	}
}
