package watchdog

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// notifySocket receives systemd notify-protocol datagrams from the child.
type notifySocket struct {
	conn *net.UnixConn
	addr string // the NOTIFY_SOCKET value: a path, or "@name" for an abstract socket
	path string // file to remove on close, if any
}

// notifyMsg is one datagram, with the sender's pid from SCM_CREDENTIALS.
type notifyMsg struct {
	pid    int
	fields []kv
}

type kv struct{ k, v string }

const maxUnixPath = 107

func listenNotify(stateDir, name string) (*notifySocket, error) {
	dir := filepath.Join(stateDir, "run")
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name+".notify")
	n := &notifySocket{addr: path, path: path}
	if len(path) > maxUnixPath {
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
	return n, nil
}

// serve reads datagrams until the socket is closed.
func (n *notifySocket) serve(msgs chan<- any, done <-chan struct{}) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		nb, noob, _, _, err := n.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		pid := credPID(oob[:noob])
		m := notifyMsg{pid: pid, fields: parseNotify(string(buf[:nb]))}
		select {
		case msgs <- m:
		case <-done:
			return
		}
	}
}

func (n *notifySocket) close() {
	n.conn.Close()
	if n.path != "" {
		os.Remove(n.path)
	}
}

func credPID(oob []byte) int {
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, c := range cmsgs {
		if cred, err := unix.ParseUnixCredentials(&c); err == nil {
			return int(cred.Pid)
		}
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
	c := s.cur
	if c == nil || c.planned != "" {
		return
	}
	if m.pid == 0 || (!inTree(m.pid, c.pid) && !vanished(m.pid)) {
		s.event(Warning{Err: fmt.Errorf("watchdog: notify message from pid %d, not in the child's process tree: ignored", m.pid)})
		return
	}
	for _, f := range m.fields {
		switch f.k {
		case "READY":
			if f.v == "1" && !c.ready {
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
		}
	}
}

// vanished reports whether pid no longer exists. A notify sender that ran
// and exited before its datagram was read (a systemd-notify style helper)
// cannot be placed in the process tree any more; it is accepted, since
// only the supervisor's own user can reach the socket (mode 0600 in a 0700
// directory). A sender that still exists must be in the child's tree.
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
