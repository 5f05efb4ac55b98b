package watchdog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// notifySocket receives systemd notify-protocol datagrams from the child.
// Its reader decides who may speak (Config.NotifyAccess) before a datagram
// is parsed or reaches the loop, so that a flood from a stranger costs one
// read and a map lookup per datagram.
type notifySocket struct {
	conn *net.UnixConn
	addr string // the NOTIFY_SOCKET value: a path, or "@name" for an abstract socket
	path string // file to remove on close, if any

	access  NotifyAccess
	root    atomic.Int64 // the current child's pid; 0 between children
	main    atomic.Int64 // its main pid (MAINPID=)
	warn    func(error)  // refusal warnings, rate-limited by refused
	refused *refusals
	// strangers remembers live senders found outside the tree, for
	// strangerTTL: a process outside the tree never joins it, so only pid
	// reuse can make the answer stale. Owned by the reader goroutine.
	strangers map[int]time.Time
}

const strangerTTL = time.Second

// notifyMsg is one datagram, with the sender's pid from SCM_CREDENTIALS
// and the child it was accepted for.
type notifyMsg struct {
	pid    int
	root   int
	fields []kv
	// Descriptors passed with the datagram (SCM_RIGHTS), owned by the
	// message: stored by FDSTORE=1 or closed (sockets.go).
	fds       []int
	truncated bool
}

type kv struct{ k, v string }

const maxUnixPath = 107

// listenNotify opens the notify socket of a service. It is abstract when
// the path is too long, or when the child runs as another user (abstract,
// which the child's user may reach without access to the state directory).
func listenNotify(stateDir, name string, abstract bool) (*notifySocket, error) {
	dir := filepath.Join(stateDir, "run")
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name+".notify")
	n := &notifySocket{addr: path, path: path}
	if len(path) > maxUnixPath || abstract {
		// Too long for sockaddr_un: fall back to an abstract socket; the
		// sender's credentials are checked all the same.
		n.addr = fmt.Sprintf("@mtev-supervise/%d/%s", os.Getpid(), name)
		n.path = ""
	} else {
		os.Remove(path)
	}
	la := &net.UnixAddr{Name: n.addr, Net: "unixgram"}
	if strings.HasPrefix(n.addr, "@") {
		la.Name = "\x00" + n.addr[1:]
	}
	conn, err := net.ListenUnixgram("unixgram", la)
	if err != nil {
		return nil, fmt.Errorf("watchdog: notify socket: %w", err)
	}
	if n.path != "" {
		// The child runs as the same user; nobody else may write.
		if err := os.Chmod(n.path, 0o600); err != nil {
			conn.Close()
			return nil, fmt.Errorf("watchdog: notify socket: %w", err)
		}
	}
	raw, err := conn.SyscallConn()
	if err == nil {
		var serr error
		err = raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
		})
		if err == nil {
			err = serr
		}
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("watchdog: notify socket: SO_PASSCRED: %w", err)
	}
	n.conn = conn
	n.access = NotifyMain
	n.refused = newRefusals(refusalInterval, nil)
	n.strangers = map[int]time.Time{}
	return n, nil
}

// serve reads datagrams until the socket is closed.
func (n *notifySocket) serve(msgs chan<- any, done <-chan struct{}) {
	raw, err := n.conn.SyscallConn()
	if err != nil {
		return
	}
	r := newDgramReader(raw)
	for {
		count, err := r.read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		root := int(n.root.Load())
		for i := range count {
			payload, oob := r.msg(i)
			fds := rightsFDs(oob)
			if root == 0 {
				closeFDs(fds)
				continue // no child to apply them to
			}
			if string(payload) == "BARRIER=1" {
				// sd_notify_barrier: closing the descriptor it passed,
				// done as it was read, is the whole answer. Its sender
				// (systemd-notify --ready) exits at once, so it is never
				// checked or refused.
				closeFDs(fds)
				continue
			}
			pid := credPID(oob)
			if why := n.refuse(pid, root, payload); why != "" {
				closeFDs(fds)
				n.report(pid, why)
				continue
			}
			m := notifyMsg{pid: pid, root: root, fields: parseNotify(string(payload)), fds: fds, truncated: r.truncated(i)}
			select {
			case msgs <- m:
			case <-done:
				closeFDs(fds)
				for j := i + 1; j < count; j++ {
					_, oob := r.msg(j)
					closeFDs(rightsFDs(oob))
				}
				return
			}
		}
	}
}

// refuse says why a datagram from pid is not accepted for the child root,
// or "" when it is.
func (n *notifySocket) refuse(pid, root int, payload []byte) string {
	switch n.access {
	case NotifyAll:
		return ""
	case NotifyNone:
		return "notify access is none"
	}
	if pid <= 0 {
		return "no sender credentials"
	}
	now := time.Now()
	if until, ok := n.strangers[pid]; ok {
		if now.Before(until) {
			return "not in the child's process tree"
		}
		delete(n.strangers, pid)
	}
	main := int(n.main.Load())
	if inTree(pid, root) || (main != root && main > 1 && inTree(pid, main)) {
		return ""
	}
	if !vanished(pid) {
		if len(n.strangers) >= 4096 {
			clear(n.strangers)
		}
		n.strangers[pid] = now.Add(strangerTTL)
		return "not in the child's process tree"
	}
	if n.access == NotifyExec {
		return ""
	}
	// systemd-notify --pid=X: sent on behalf of X, by a process that has
	// exited by now.
	if x := mainPIDField(payload); x > 1 && (x == main || inTree(x, root)) && !vanished(x) {
		return ""
	}
	return "the sender exited before it was read and cannot be placed in the child's process tree (see --notify-access)"
}

// report warns about a refusal, at most once per sender per interval.
func (n *notifySocket) report(pid int, why string) {
	ok, suppressed := n.refused.allow(pid)
	if !ok || n.warn == nil {
		return
	}
	more := ""
	if suppressed > 0 {
		more = fmt.Sprintf(" (%d more from it suppressed in the last %v)", suppressed, n.refused.interval)
	}
	n.warn(fmt.Errorf("watchdog: notify message from pid %d refused: %s%s", pid, why, more))
}

// mainPIDField returns the value of a MAINPID= line of payload, or 0.
func mainPIDField(payload []byte) int {
	for _, line := range strings.Split(string(payload), "\n") {
		if v, ok := strings.CutPrefix(line, "MAINPID="); ok {
			pid, _ := strconv.Atoi(v)
			return pid
		}
	}
	return 0
}

func (n *notifySocket) close() {
	n.conn.Close()
	if n.path != "" {
		os.Remove(n.path)
	}
}

// credPID returns the sender's pid from an SCM_CREDENTIALS control
// message, or 0. It reads the headers in place: it is on the path of every
// datagram, a flood's included.
func credPID(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		l := int(binary.NativeEndian.Uint64(oob[0:8]))
		level := int32(binary.NativeEndian.Uint32(oob[8:12]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:16]))
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return 0
		}
		if level == unix.SOL_SOCKET && typ == unix.SCM_CREDENTIALS && l >= unix.CmsgLen(unix.SizeofUcred) {
			return int(int32(binary.NativeEndian.Uint32(oob[unix.CmsgLen(0):])))
		}
		next := unix.CmsgSpace(l - unix.CmsgLen(0))
		if next > len(oob) {
			return 0
		}
		oob = oob[next:]
	}
	return 0
}

// parseNotify splits a notify datagram into KEY=VALUE assignments, one per
// line; lines without '=' are ignored, as systemd does.
func parseNotify(s string) []kv {
	var out []kv
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		out = append(out, kv{k, v})
	}
	return out
}

// handleNotify applies a datagram from the child's process tree.
func (s *Supervisor) handleNotify(m notifyMsg) {
	// The descriptor store first: it takes the message's descriptors even
	// from a child that is ending (systemd's store-on-stop).
	s.fdStoreMsg(m)
	c := s.cur
	if c == nil || c.planned != "" || m.root != c.pid {
		return
	}
	for _, f := range m.fields {
		switch f.k {
		case "READY":
			if f.v == "1" && !c.ready {
				if c.probeGatesReady() {
					// Ready once the start-up probe passes too (probes.go).
					continue
				}
				c.ready = true
				if c.startupT != nil {
					c.startupT.Stop()
					c.startupT = nil
				}
				s.event(Ready{PID: c.pid})
				if s.cfg.Watchdog > 0 && c.watchDur == 0 {
					c.watchDur = s.cfg.Watchdog
				}
				s.armWatchdog(c)
			}
		case "STATUS":
			c.status = f.v
			s.event(Status{PID: c.pid, Text: f.v})
		case "STOPPING":
			if f.v == "1" {
				c.status = "stopping"
			}
		case "WATCHDOG":
			switch f.v {
			case "1":
				s.armWatchdog(c)
			case "trigger":
				s.stalled(c, trace.Stall{Source: "notify-watchdog", Stage: "hard", TimeoutMS: ms(c.watchDur)})
				return
			}
		case "WATCHDOG_USEC":
			us, err := strconv.ParseInt(f.v, 10, 64)
			if err != nil || us <= 0 {
				s.event(Warning{Err: fmt.Errorf("watchdog: notify: bad WATCHDOG_USEC=%q", f.v)})
				continue
			}
			c.watchDur = time.Duration(us) * time.Microsecond
			s.armWatchdog(c)
		case "EXTEND_TIMEOUT_USEC":
			us, err := strconv.ParseInt(f.v, 10, 64)
			if err != nil || us < 0 {
				s.event(Warning{Err: fmt.Errorf("watchdog: notify: bad EXTEND_TIMEOUT_USEC=%q", f.v)})
				continue
			}
			// Like systemd: the pending start-up (or stop) deadline is
			// moved to now + the value, if that is later.
			at := time.Now().Add(time.Duration(us) * time.Microsecond)
			if c.startupT != nil && at.After(c.startupAt) {
				c.startupT.Reset(time.Until(at))
				c.startupAt = at
			}
			if c.killT != nil {
				c.killT.Reset(time.Until(at))
			}
		case "MAINPID":
			pid, err := strconv.Atoi(f.v)
			if err != nil || pid <= 1 || !inTree(pid, c.pid) {
				s.event(Warning{Err: fmt.Errorf("watchdog: notify: MAINPID=%s is not in the child's process tree: ignored", f.v)})
				continue
			}
			c.mainPID = pid
			if s.notify != nil {
				s.notify.main.Store(int64(pid))
			}
		}
	}
}

// track tells the notify reader which child is current (nil: none).
func (s *Supervisor) notifyTrack(c *child) {
	if s.notify == nil {
		return
	}
	if c == nil {
		s.notify.root.Store(0)
		return
	}
	s.notify.main.Store(int64(c.mainPID))
	s.notify.root.Store(int64(c.pid))
}

// vanished reports whether pid no longer exists: a notify sender that ran
// and exited before its datagram was read (a systemd-notify style helper)
// cannot be placed in the process tree any more.
func vanished(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return errors.Is(err, os.ErrNotExist)
}

// armWatchdog (re)starts the notify watchdog deadline, when one is set and
// the child is ready.
func (s *Supervisor) armWatchdog(c *child) {
	if c.watchDur <= 0 || !c.ready {
		return
	}
	if c.watchT == nil {
		c.watchT = s.clock.NewTimer(c.watchDur)
		return
	}
	c.watchT.Reset(c.watchDur)
}
