package watchdog

// Sockets held by the supervisor (Config.Listen) and the notify
// protocol's file descriptor store (FDSTORE=1): descriptors that outlive
// a child and are handed to the next one with systemd's socket-activation
// convention (fds 3 up, LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID set by the
// trampoline to the child's own pid). See docs/sockets.md.

import (
	"context"
	"errors"
	"fmt"
	"github.com/mtev-supervise/mtev-supervise/internal/trampoline"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrListen: a socket of Config.Listen could not be opened (address in
// use, no such directory, ...). Serve returns it before the first start.
var ErrListen = errors.New("watchdog: cannot open a listening socket")

// Defaults and bounds of the descriptor store.
const (
	// DefaultFDStoreMax is how many descriptors a child may keep in the
	// supervisor's store (FDSTORE=1) when Config.FDStoreMax is 0.
	DefaultFDStoreMax = 16
	// MaxFDStoreMax bounds Config.FDStoreMax.
	MaxFDStoreMax = 4096
	// FDsPerMessage is the most descriptors one notify datagram may carry;
	// the kernel discards the rest and the message is refused.
	FDsPerMessage = 16
)

// Listen is a socket the supervisor opens before the first start and
// passes to every child: "NAME=tcp://HOST:PORT", "NAME=udp://HOST:PORT" or
// "NAME=unix:///PATH" (unix://@NAME for an abstract socket).
type Listen struct {
	Name    string // its LISTEN_FDNAMES entry
	Network string // "tcp", "udp" or "unix"
	Address string // HOST:PORT, or the socket's path
}

func (l Listen) String() string { return l.Name + "=" + l.Network + "://" + l.Address }

// ParseListen parses "NAME=ADDR".
func ParseListen(s string) (Listen, error) {
	name, addr, ok := strings.Cut(s, "=")
	if !ok {
		return Listen{}, fmt.Errorf("watchdog: listen %q: want NAME=ADDR (tcp://HOST:PORT, udp://HOST:PORT or unix:///PATH)", s)
	}
	if !validFDName(name) {
		return Listen{}, fmt.Errorf("watchdog: listen %q: bad name %q: want 1 to 255 printable ASCII characters, no ':'", s, name)
	}
	network, rest, ok := strings.Cut(addr, "://")
	if !ok {
		return Listen{}, fmt.Errorf("watchdog: listen %q: address %q has no scheme: want tcp://HOST:PORT, udp://HOST:PORT or unix:///PATH", s, addr)
	}
	l := Listen{Name: name, Network: network, Address: rest}
	switch network {
	case "tcp", "udp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return Listen{}, fmt.Errorf("watchdog: listen %q: %w", s, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return Listen{}, fmt.Errorf("watchdog: listen %q: port %q: want a number from 0 to 65535", s, port)
		}
		port = strconv.FormatUint(p, 10)
		if strings.ContainsAny(host, "/%") {
			return Listen{}, fmt.Errorf("watchdog: listen %q: bad host %q", s, host)
		}
		l.Address = net.JoinHostPort(host, port)
	case "unix":
		switch {
		case strings.HasPrefix(rest, "@") && len(rest) > 1:
		case filepath.IsAbs(rest):
			l.Address = filepath.Clean(rest)
		default:
			return Listen{}, fmt.Errorf("watchdog: listen %q: unix socket path %q: want an absolute path (unix:///run/app.sock) or @NAME", s, rest)
		}
		if len(l.Address) > maxUnixPath {
			return Listen{}, fmt.Errorf("watchdog: listen %q: unix socket path is %d bytes, the limit is %d", s, len(l.Address), maxUnixPath)
		}
	default:
		return Listen{}, fmt.Errorf("watchdog: listen %q: unknown scheme %q: want tcp, udp or unix", s, network)
	}
	return l, nil
}

// validFDName is systemd's rule for LISTEN_FDNAMES entries and FDNAME=:
// 1 to 255 printable ASCII characters, no ':' (the separator).
func validFDName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// validateListen checks a defaulted config's sockets and store bound.
func validateListen(c Config, bad func(string, ...any)) {
	seen := map[string]bool{}
	for _, l := range c.Listen {
		if _, err := ParseListen(l.Name + "=" + l.Network + "://" + l.Address); err != nil {
			bad("%v", err)
		}
		if seen[l.Name] {
			bad("listen name %q given twice", l.Name)
		}
		seen[l.Name] = true
	}
	if c.FDStoreMax > MaxFDStoreMax {
		bad("fdstore-max %d: want at most %d", c.FDStoreMax, MaxFDStoreMax)
	}
}

// heldSocket is an open socket of Config.Listen.
type heldSocket struct {
	Listen
	f     *os.File
	bound string // the address it is bound to (the port chosen for port 0)
	ino   uint64 // the unix socket file it created, removed on close
}

// openListen opens l: a blocking, close-on-exec socket, bound and (for
// stream sockets) listening with a backlog of SOMAXCONN, as systemd does.
// A unix socket file left by a dead process (nobody accepts on it) is
// replaced; a live one, or any other file at the path, is an error.
func openListen(l Listen) (*heldSocket, error) {
	fail := func(err error) (*heldSocket, error) {
		return nil, fmt.Errorf("%w: %s: %w", ErrListen, l, err)
	}
	typ := unix.SOCK_STREAM
	if l.Network == "udp" {
		typ = unix.SOCK_DGRAM
	}
	var family int
	var sa unix.Sockaddr
	dualStack := false
	switch l.Network {
	case "unix":
		family = unix.AF_UNIX
		path := l.Address
		if strings.HasPrefix(path, "@") {
			sa = &unix.SockaddrUnix{Name: "\x00" + path[1:]}
			break
		}
		if err := staleUnix(path); err != nil {
			return fail(err)
		}
		sa = &unix.SockaddrUnix{Name: path}
	default:
		host, port, _ := net.SplitHostPort(l.Address)
		p, _ := strconv.Atoi(port)
		var ip netip.Addr
		switch host {
		case "", "*":
			ip, dualStack = netip.IPv6Unspecified(), true
		default:
			var err error
			if ip, err = netip.ParseAddr(host); err != nil {
				ips, lerr := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
				if lerr != nil || len(ips) == 0 {
					return fail(fmt.Errorf("cannot resolve host %q: %w", host, lerr))
				}
				ip = ips[0]
			}
			ip = ip.Unmap()
		}
		if ip.Is4() {
			family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: p, Addr: ip.As4()}
		} else {
			family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: p, Addr: ip.As16()}
		}
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil && dualStack && errors.Is(err, unix.EAFNOSUPPORT) {
		// No IPv6 on this host: every IPv4 address instead.
		family, sa, dualStack = unix.AF_INET, &unix.SockaddrInet4{Port: sa.(*unix.SockaddrInet6).Port}, false
		fd, err = unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return fail(err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	if family != unix.AF_UNIX {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fail(err)
		}
	}
	if dualStack {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			return fail(err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return fail(fmt.Errorf("address already in use"))
		}
		if errors.Is(err, unix.ENOENT) && l.Network == "unix" {
			return fail(fmt.Errorf("directory %s does not exist", filepath.Dir(l.Address)))
		}
		return fail(err)
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
			return fail(err)
		}
	}
	h := &heldSocket{Listen: l, bound: l.Address}
	if got, err := unix.Getsockname(fd); err == nil {
		switch a := got.(type) {
		case *unix.SockaddrInet4:
			h.bound = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
		case *unix.SockaddrInet6:
			h.bound = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
		}
	}
	if l.Network == "unix" && !strings.HasPrefix(l.Address, "@") {
		var st unix.Stat_t
		if unix.Stat(l.Address, &st) == nil {
			h.ino = st.Ino
		}
	}
	ok = true
	h.f = os.NewFile(uintptr(fd), l.Name)
	return h, nil
}

// staleUnix prepares path for a new unix socket: nothing there is fine; a
// socket nobody accepts on is removed; a live socket or any other file is
// an error.
func staleUnix(path string) error {
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("directory %s does not exist", filepath.Dir(path))
		}
		return err
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_SEQPACKET} {
		fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		unix.Close(fd)
		switch {
		case err == nil, errors.Is(err, unix.EAGAIN):
			return fmt.Errorf("address already in use: a process listens on %s", path)
		case errors.Is(err, unix.EPROTOTYPE):
			continue // a socket of another type: try the next
		case errors.Is(err, unix.ECONNREFUSED):
			// Nobody listens: a file left by a process that died.
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("stale socket %s: %w", path, err)
			}
			return nil
		default:
			return fmt.Errorf("cannot tell whether %s is in use: %w", path, err)
		}
	}
	return fmt.Errorf("cannot tell whether %s is in use", path)
}

// close closes the socket and removes the file it created, unless
// another socket replaced it since.
func (h *heldSocket) close() {
	h.f.Close()
	if h.ino != 0 {
		var st unix.Stat_t
		if unix.Stat(h.Address, &st) == nil && st.Ino == h.ino {
			os.Remove(h.Address)
		}
	}
}

// openSockets opens every socket of the configuration, all or none; the
// returned function closes them.
func (s *Supervisor) openSockets() (func(), error) {
	s.keepInherited()
	var held []*heldSocket
	closeAll := func() {
		for _, h := range held {
			h.close()
		}
	}
	if s.cfg.AdoptInherited {
		adopted, err := s.adoptInherited()
		if err != nil {
			return nil, err
		}
		held = append(held, adopted...)
	}
	for _, l := range s.cfg.Listen {
		for _, h := range held {
			if h.Name == l.Name {
				closeAll()
				return nil, fmt.Errorf("%w: listen %s: the name %q is taken by a socket the service manager passed", ErrListen, l, l.Name)
			}
		}
		h, err := openListen(l)
		if err != nil {
			closeAll()
			return nil, err
		}
		held = append(held, h)
	}
	s.sockets = held
	for _, h := range held {
		s.event(Listening{Name: h.Name, Network: h.Network, Address: h.bound})
	}
	return closeAll, nil
}

// Listening: a socket of Config.Listen is open; every child receives it.
type Listening struct {
	Name    string
	Network string
	Address string // as bound: the port the kernel chose for port 0
}

func (Listening) event() {}

func (e Listening) String() string {
	return fmt.Sprintf("listening on %s://%s for every child (%s)", e.Network, e.Address, e.Name)
}

// passFiles adds the held sockets and the stored descriptors to a child
// about to start, first in ExtraFiles (fd 3 up), with LISTEN_FDS and
// LISTEN_FDNAMES; the trampoline sets LISTEN_PID. It returns how many it
// added.
func (s *Supervisor) passFiles(cmd *exec.Cmd) int {
	var names []string
	for _, h := range s.sockets {
		cmd.ExtraFiles = append(cmd.ExtraFiles, h.f)
		names = append(names, h.Name)
	}
	for _, e := range s.fdstore.entries {
		cmd.ExtraFiles = append(cmd.ExtraFiles, e.f)
		names = append(names, e.name)
	}
	if len(names) > 0 {
		cmd.Env = append(cmd.Env,
			"LISTEN_FDS="+strconv.Itoa(len(names)),
			"LISTEN_FDNAMES="+strings.Join(names, ":"),
		)
	}
	return len(names)
}

// fdStore keeps the descriptors children stored with FDSTORE=1, in the
// order they were stored. Owned by the loop.
type fdStore struct {
	max     int // -1: no store
	entries []storedFD
	refused *refusals
}

type storedFD struct {
	name string
	f    *os.File
}

// closeFDs closes descriptors received but not kept.
func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// fdStoreMsg applies the FDSTORE=1 and FDSTOREREMOVE=1 of a datagram
// accepted for a child of this supervisor; it owns m.fds and closes every
// descriptor it does not keep.
func (s *Supervisor) fdStoreMsg(m notifyMsg) {
	var store, remove bool
	name := ""
	for _, f := range m.fields {
		switch f.k {
		case "FDSTORE":
			store = f.v == "1"
		case "FDSTOREREMOVE":
			remove = f.v == "1"
		case "FDNAME":
			name = f.v
		}
	}
	if !store && !remove {
		if len(m.fds) > 0 {
			closeFDs(m.fds)
			s.fdRefused(m.pid, "descriptors without FDSTORE=1 are closed")
		}
		return
	}
	st := &s.fdstore
	if remove {
		if len(m.fds) > 0 {
			closeFDs(m.fds)
			s.fdRefused(m.pid, "FDSTOREREMOVE=1 carries no descriptors: closed")
		}
		if name == "" {
			s.fdRefused(m.pid, "FDSTOREREMOVE=1 without FDNAME=")
			return
		}
		st.remove(name)
		return
	}
	if name == "" {
		name = "stored" // systemd's name for an unnamed entry
	}
	switch {
	case len(m.fds) == 0:
		s.fdRefused(m.pid, "FDSTORE=1 without descriptors")
		return
	case m.truncated:
		closeFDs(m.fds)
		s.fdRefused(m.pid, fmt.Sprintf("more than %d descriptors in one message", FDsPerMessage))
		return
	case !validFDName(name):
		closeFDs(m.fds)
		s.fdRefused(m.pid, fmt.Sprintf("FDNAME=%q: want 1 to 255 printable ASCII characters, no ':'", name))
		return
	case st.max < 0:
		closeFDs(m.fds)
		s.fdRefused(m.pid, "the descriptor store is off (--fdstore-max 0)")
		return
	case s.ending:
		closeFDs(m.fds)
		return
	}
	kept := 0
	for _, e := range st.entries {
		if e.name != name {
			kept++
		}
	}
	if kept+len(m.fds) > st.max {
		closeFDs(m.fds)
		s.fdRefused(m.pid, fmt.Sprintf("the descriptor store is full (%d of --fdstore-max %d)", len(st.entries), st.max))
		return
	}
	// A name stored again replaces what it named.
	st.remove(name)
	for _, fd := range m.fds {
		st.entries = append(st.entries, storedFD{name: name, f: os.NewFile(uintptr(fd), name)})
	}
}

// remove closes and forgets every entry named name.
func (st *fdStore) remove(name string) {
	kept := st.entries[:0]
	for _, e := range st.entries {
		if e.name == name {
			e.f.Close()
			continue
		}
		kept = append(kept, e)
	}
	clear(st.entries[len(kept):])
	st.entries = kept
}

// clear closes every entry.
func (st *fdStore) clear() {
	for _, e := range st.entries {
		e.f.Close()
	}
	st.entries = nil
}

// fdRefused warns about a refused store message, at most once per sender
// per interval.
func (s *Supervisor) fdRefused(pid int, why string) {
	if s.fdstore.refused == nil {
		s.fdstore.refused = newRefusals(refusalInterval, nil)
	}
	ok, suppressed := s.fdstore.refused.allow(pid)
	if !ok {
		return
	}
	more := ""
	if suppressed > 0 {
		more = fmt.Sprintf(" (%d more from it suppressed in the last %v)", suppressed, s.fdstore.refused.interval)
	}
	s.event(Warning{Err: fmt.Errorf("watchdog: notify: descriptor store: message from pid %d refused: %s%s", pid, why, more)})
}

// adoptInherited takes the descriptors a service manager passed to this
// process (LISTEN_FDS from fd 3, when LISTEN_PID is this process) as held
// sockets, named by LISTEN_FDNAMES ("unknown" where it names none, as
// systemd does). A descriptor that is not a socket (a FIFO, a memfd from
// systemd's own store) is passed on as it is.
func (s *Supervisor) adoptInherited() ([]*heldSocket, error) {
	env := s.sys.environ()
	if lookupEnv(env, "LISTEN_PID") != strconv.Itoa(s.sys.getpid()) {
		return nil, nil
	}
	names := strings.Split(lookupEnv(env, "LISTEN_FDNAMES"), ":")
	var out []*heldSocket
	for i, p := range trampoline.Passed {
		fd := p.FD
		name := "unknown"
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		// Checked against what the process found open at its start: a
		// number the manager named but did not pass may since hold a
		// descriptor of this process's own (the Go runtime's poller).
		var st unix.Stat_t
		if !p.Open {
			return nil, fmt.Errorf("%w: descriptor %d passed by the service manager (%s): it was not open when this process started", ErrListen, fd, name)
		}
		if err := unix.Fstat(fd, &st); err != nil || st.Dev != p.Dev || st.Ino != p.Ino {
			return nil, fmt.Errorf("%w: descriptor %d passed by the service manager (%s) was closed or replaced since this process started", ErrListen, fd, name)
		}
		h := &heldSocket{Listen: Listen{Name: name, Network: "fd", Address: strconv.Itoa(fd)}}
		if st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			h.Network, h.Address = inheritedAddr(fd)
		}
		h.bound = h.Address
		h.f = os.NewFile(uintptr(fd), name)
		out = append(out, h)
	}
	return out, nil
}

// inheritedAddr names a passed socket as --listen would: its network and
// the address it is bound to.
func inheritedAddr(fd int) (network, address string) {
	typ, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "socket", strconv.Itoa(fd)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		network, address = "tcp", netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		network, address = "tcp", netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrUnix:
		return "unix", a.Name
	default:
		return "socket", strconv.Itoa(fd)
	}
	if typ == unix.SOCK_DGRAM {
		network = "udp"
	}
	return network, address
}

// keepInherited marks the descriptors a service manager passed to this
// process (LISTEN_FDS from fd 3, when LISTEN_PID is this process)
// close-on-exec: like the LISTEN_* variables, they are this process's and
// never reach the child.
func (s *Supervisor) keepInherited() {
	env := s.sys.environ()
	if lookupEnv(env, "LISTEN_PID") != strconv.Itoa(s.sys.getpid()) {
		return
	}
	n, err := strconv.Atoi(lookupEnv(env, "LISTEN_FDS"))
	if err != nil || n <= 0 || n > 1<<16 {
		return
	}
	for fd := 3; fd < 3+n; fd++ {
		unix.CloseOnExec(fd)
	}
}
