package listener

import (
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// inherited holds the sockets passed by a service manager (systemd
// socket activation: LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES), taken once
// and handed out by name or address; a socket stays here until a
// listener claims it, and a stopped listener's inherited socket returns.
// Passed descriptors that are not listening sockets (a UDP socket, a
// memfd kept in mtev-supervise's descriptor store) wait in files for
// Inherited.
var inherited struct {
	once   sync.Once
	mu     sync.Mutex
	byName map[string][]net.Listener
	files  map[string][]*os.File
}

func loadInherited() {
	inherited.once.Do(func() {
		inherited.byName = map[string][]net.Listener{}
		inherited.files = map[string][]*os.File{}
		for _, f := range activation.Files(true) {
			ln, err := net.FileListener(f)
			if err != nil {
				inherited.files[f.Name()] = append(inherited.files[f.Name()], f)
				continue
			}
			f.Close()
			inherited.byName[f.Name()] = append(inherited.byName[f.Name()], ln)
		}
	})
}

// Inherited hands over the descriptors the service manager passed under
// name (LISTEN_FDNAMES) that are not listening sockets: a UDP socket, or
// a memfd or socket a previous run kept in mtev-supervise's descriptor
// store (FDSTORE=1). Each is returned once; the caller owns it. They are
// close-on-exec.
func Inherited(name string) []*os.File {
	loadInherited()
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	fs := inherited.files[name]
	delete(inherited.files, name)
	return fs
}

func takeInherited(s *Spec) net.Listener {
	loadInherited()
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	if s.Name != "" {
		if lns := inherited.byName[s.Name]; len(lns) > 0 {
			inherited.byName[s.Name] = lns[1:]
			return lns[0]
		}
	}
	network, want := s.Network()
	for name, lns := range inherited.byName {
		for i, ln := range lns {
			if sameAddr(network, want, ln.Addr()) {
				inherited.byName[name] = append(lns[:i:i], lns[i+1:]...)
				return ln
			}
		}
	}
	return nil
}

func sameAddr(network, want string, got net.Addr) bool {
	if network == "unix" {
		return got.Network() == "unix" && got.String() == want
	}
	w, err1 := netip.ParseAddrPort(want)
	g, err2 := netip.ParseAddrPort(got.String())
	if err1 != nil || err2 != nil || w.Port() == 0 {
		return false
	}
	if w.Port() != g.Port() {
		return false
	}
	// A socket on every address is any listener's on every address: a
	// supervisor's tcp://:PORT (or systemd's ListenStream=PORT) is [::]
	// taking IPv4 too, a listener's address="*" is 0.0.0.0.
	wa, ga := w.Addr().Unmap(), g.Addr().Unmap()
	return wa == ga || wa.IsUnspecified() && ga.IsUnspecified()
}

// open returns the listener's socket: an inherited one if the service
// manager passed one by the listener's name or address, otherwise a new
// socket with SO_REUSEADDR and the configured backlog. An existing unix
// socket at the path is replaced; any other file there is an error
// (libmtev unlinks regular files too).
func open(s *Spec) (net.Listener, error) {
	if ln := takeInherited(s); ln != nil {
		return ln, nil
	}
	network, address := s.Network()
	fail := func(err error) (net.Listener, error) {
		return nil, fmt.Errorf("%s: listener %s: %w: %s %s: %w", s.Pos, s.Key(), ErrListen, network, address, err)
	}
	var family int
	var sa unix.Sockaddr
	switch network {
	case "unix":
		if st, err := os.Lstat(address); err == nil {
			if st.Mode()&fs.ModeSocket == 0 {
				return fail(fmt.Errorf("exists and is not a socket"))
			}
			if err := os.Remove(address); err != nil {
				return fail(err)
			}
		}
		family, sa = unix.AF_UNIX, &unix.SockaddrUnix{Name: address}
	default:
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fail(err)
		}
		if network == "tcp4" {
			family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
		} else {
			family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
		}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
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
	if err := unix.Bind(fd, sa); err != nil {
		return fail(err)
	}
	if err := unix.Listen(fd, s.Backlog); err != nil {
		return fail(err)
	}
	f := os.NewFile(uintptr(fd), s.Key())
	ok = true
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return fail(err)
	}
	if ul, isUnix := ln.(*net.UnixListener); isUnix {
		ul.SetUnlinkOnClose(true)
	}
	return ln, nil
}

// Port returns the TCP port a listener is bound to (after port="0").
func Port(a net.Addr) int {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return 0
	}
	return int(ap.Port())
}
