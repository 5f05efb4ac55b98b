package watchdog

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseListen(t *testing.T) {
	good := []struct {
		in   string
		want Listen
	}{
		{"http=tcp://127.0.0.1:8080", Listen{"http", "tcp", "127.0.0.1:8080"}},
		{"http=tcp://:8080", Listen{"http", "tcp", ":8080"}},
		{"h=tcp://[::1]:0", Listen{"h", "tcp", "[::1]:0"}},
		{"h=tcp://localhost:08080", Listen{"h", "tcp", "localhost:8080"}},
		{"dns=udp://0.0.0.0:53", Listen{"dns", "udp", "0.0.0.0:53"}},
		{"s=unix:///run/app//web.sock", Listen{"s", "unix", "/run/app/web.sock"}},
		{"s=unix://@abstract", Listen{"s", "unix", "@abstract"}},
		{"x.y-z_1=tcp://1.2.3.4:1", Listen{"x.y-z_1", "tcp", "1.2.3.4:1"}},
	}
	for _, c := range good {
		got, err := ParseListen(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseListen(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	bad := map[string]string{
		"http":                                     "want NAME=ADDR",
		"=tcp://127.0.0.1:80":                      "bad name",
		"a:b=tcp://127.0.0.1:80":                   "bad name",
		"a b=tcp://127.0.0.1:80":                   "bad name",
		"http=127.0.0.1:80":                        "no scheme",
		"http=tcp://127.0.0.1":                     "missing port",
		"http=tcp://127.0.0.1:":                    "want a number",
		"http=tcp://127.0.0.1:65536":               "want a number",
		"http=tcp://127.0.0.1:http":                "want a number",
		"http=tcp://a/b:80":                        "bad host",
		"http=sctp://127.0.0.1:80":                 "unknown scheme",
		"http=unix://run/app.sock":                 "absolute path",
		"http=unix://@":                            "absolute path",
		"http=unix:///" + strings.Repeat("a", 120): "the limit is",
		strings.Repeat("n", 256) + "=tcp://:1":     "bad name",
	}
	for in, want := range bad {
		_, err := ParseListen(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "watchdog: listen ") {
			t.Errorf("ParseListen(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

func TestConfigListenValidation(t *testing.T) {
	l := Listen{"a", "tcp", "127.0.0.1:0"}
	cfg := Config{Command: []string{"true"}, StateDir: t.TempDir(), Listen: []Listen{l, l}}
	if _, err := New(cfg, Options{}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `listen name "a" given twice`) {
		t.Errorf("duplicate name: %v", err)
	}
	cfg.Listen = []Listen{{"a", "ftp", "x"}}
	if _, err := New(cfg, Options{}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "unknown scheme") {
		t.Errorf("bad scheme: %v", err)
	}
	cfg.Listen, cfg.FDStoreMax = nil, MaxFDStoreMax+1
	if _, err := New(cfg, Options{}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "fdstore-max") {
		t.Errorf("fdstore-max: %v", err)
	}
}

func mustListen(t *testing.T, s string) Listen {
	t.Helper()
	l, err := ParseListen(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestOpenListenTCP(t *testing.T) {
	h, err := openListen(mustListen(t, "web=tcp://127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	if !strings.HasPrefix(h.bound, "127.0.0.1:") || strings.HasSuffix(h.bound, ":0") {
		t.Fatalf("bound %q: want the port the kernel chose", h.bound)
	}
	// Blocking, as systemd passes sockets: a C child's accept blocks.
	if fl, err := unix.FcntlInt(h.f.Fd(), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Errorf("flags %#x, %v: want a blocking socket", fl, err)
	}
	// Connections wait in the backlog while nobody accepts.
	c, err := net.Dial("tcp", h.bound)
	if err != nil {
		t.Fatalf("connect while nobody accepts: %v", err)
	}
	c.Close()
	_, err = openListen(mustListen(t, "again=tcp://"+h.bound))
	if !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "again=tcp://"+h.bound) {
		t.Errorf("second socket on %s: %v", h.bound, err)
	}
}

func TestOpenListenUDPAndWildcard(t *testing.T) {
	h, err := openListen(mustListen(t, "dns=udp://127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	if typ, err := unix.GetsockoptInt(int(h.f.Fd()), unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_DGRAM {
		t.Errorf("type %d, %v: want SOCK_DGRAM", typ, err)
	}
	w, err := openListen(mustListen(t, "any=tcp://:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	_, port, _ := net.SplitHostPort(w.bound)
	// Every address, IPv4 included.
	c, err := net.Dial("tcp4", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("IPv4 connect to %s: %v", w.bound, err)
	}
	c.Close()
}

func TestOpenListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.sock")
	h, err := openListen(mustListen(t, "web=unix://"+path))
	if err != nil {
		t.Fatal(err)
	}
	// Live: refused, and the file stays.
	if _, err := openListen(mustListen(t, "web=unix://"+path)); !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), "a process listens on") {
		t.Errorf("live socket: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the live socket's file went: %v", err)
	}
	h.close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("close left the socket file: %v", err)
	}

	// Stale: a socket file nobody listens on (its process died) is replaced.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	h, err = openListen(mustListen(t, "web=unix://"+path))
	if err != nil {
		t.Fatalf("stale socket file: %v", err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("connect to the replaced socket: %v", err)
	}
	c.Close()
	h.close()

	// A datagram socket at the path, live: in use too.
	dg, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openListen(mustListen(t, "web=unix://"+path)); !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), "a process listens on") {
		t.Errorf("live datagram socket: %v", err)
	}
	dg.Close()

	// Not a socket; no directory.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep me"), 0o600)
	if _, err := openListen(mustListen(t, "web=unix://"+file)); !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), "exists and is not a socket") {
		t.Errorf("regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Error("the regular file was touched")
	}
	if _, err := openListen(mustListen(t, "web=unix://"+filepath.Join(dir, "nodir", "web.sock"))); !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), "nodir does not exist") {
		t.Errorf("missing directory: %v", err)
	}

	// Abstract: no file.
	name := "@mtev-test-" + strconv.Itoa(os.Getpid())
	a, err := openListen(mustListen(t, "abs=unix://"+name))
	if err != nil {
		t.Fatal(err)
	}
	c, err = net.Dial("unix", name)
	if err != nil {
		t.Fatalf("connect to abstract %s: %v", name, err)
	}
	c.Close()
	a.close()
}

// The child gets the sockets at fds 3 up, named, with LISTEN_PID its own
// pid; the supervisor's own descriptors follow, their variables updated;
// LISTEN_* inherited by the supervisor are not passed on.
func TestChildGetsSockets(t *testing.T) {
	t.Setenv("LISTEN_FDS", "5")
	t.Setenv("LISTEN_FDNAMES", "inherited")
	t.Setenv("LISTEN_PID", "1")
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := `echo "$LISTEN_FDS $LISTEN_FDNAMES $LISTEN_PID $$" > ` + out + `
for v in 3 4 $MTEV_CRASH_FD $MTEV_HEARTS_FD $MTEV_CONTROL_FD $MTEV_REPORT_FD; do readlink /proc/$$/fd/$v >> ` + out + `; done
echo "$MTEV_CRASH_FD $MTEV_HEARTS_FD $MTEV_CONTROL_FD $MTEV_REPORT_FD" >> ` + out
	s, ev := newTestSupervisor(t, Config{
		Command: []string{"sh", "-c", script},
		Restart: RestartNever,
		Listen:  []Listen{mustListen(t, "web=tcp://127.0.0.1:0"), mustListen(t, "dns=udp://127.0.0.1:0")},
	})
	if err := s.Serve(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 8 {
		t.Fatalf("child wrote:\n%s", b)
	}
	f := strings.Fields(lines[0])
	if len(f) != 4 || f[0] != "2" || f[1] != "web:dns" || f[2] != f[3] {
		t.Errorf("LISTEN_FDS LISTEN_FDNAMES LISTEN_PID pid = %q: want 2 web:dns and LISTEN_PID the child's own pid", lines[0])
	}
	for i, want := range []string{"socket:", "socket:", "/memfd:", "/memfd:", "socket:", "socket:"} {
		if !strings.Contains(lines[1+i], want) {
			t.Errorf("descriptor %d is %q, want %s", i, lines[1+i], want)
		}
	}
	if lines[7] != "5 6 7 8" {
		t.Errorf("MTEV_CRASH_FD MTEV_HEARTS_FD MTEV_CONTROL_FD MTEV_REPORT_FD = %q, want 5 6 7 8", lines[7])
	}
	if n := ev.count(func(e Event) bool {
		l, ok := e.(Listening)
		return ok && l.Name == "web" && strings.HasPrefix(l.Address, "127.0.0.1:")
	}); n != 1 {
		t.Errorf("%d Listening events for web", n)
	}

	// Without Listen, nothing of the supervisor's own LISTEN_* reaches
	// the child, and its descriptors start at 3 again.
	s, _ = newTestSupervisor(t, Config{Command: []string{"sh", "-c", script}, Restart: RestartNever})
	if err := s.Serve(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(out)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(strings.Fields(lines[0])) != 1 || lines[len(lines)-1] != "3 4 5 6" {
		t.Errorf("without --listen the child saw:\n%s", b)
	}
}

// Serve fails before any start when a socket cannot be opened.
func TestServeAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	s, ev := newTestSupervisor(t, Config{
		Command: []string{"touch", filepath.Join(dir, "started")},
		Listen:  []Listen{mustListen(t, "ok=tcp://127.0.0.1:0"), mustListen(t, "web=tcp://"+ln.Addr().String())},
	})
	err = s.Serve(context.Background())
	if !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Serve: %v", err)
	}
	if ExitStatus(err) != ExitFailure {
		t.Errorf("exit status %d", ExitStatus(err))
	}
	if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
		t.Error("the child was started")
	}
	if n := ev.count(func(e Event) bool { _, ok := e.(Started); return ok }); n != 0 {
		t.Errorf("%d starts", n)
	}
}

func memfdT(t *testing.T) int {
	t.Helper()
	fd, err := unix.MemfdCreate("t", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// The store's rules, message by message: what is kept, what is closed.
func TestFDStoreMessages(t *testing.T) {
	ev := &events{}
	s := &Supervisor{opts: Options{Events: ev.add}}
	s.fdstore.max = 3
	msg := func(payload string, fds ...int) notifyMsg {
		return notifyMsg{pid: 42, fields: parseNotify(payload), fds: fds}
	}
	names := func() string {
		var n []string
		for _, e := range s.fdstore.entries {
			n = append(n, e.name)
		}
		return strings.Join(n, ":")
	}
	a, b := memfdT(t), memfdT(t)
	s.fdStoreMsg(msg("FDSTORE=1\nFDNAME=a", a))
	s.fdStoreMsg(msg("FDSTORE=1", b)) // unnamed: systemd's "stored"
	if names() != "a:stored" {
		t.Fatalf("store %q", names())
	}
	// Reused name: replaces (the old descriptor is closed).
	a2 := memfdT(t)
	s.fdStoreMsg(msg("FDSTORE=1\nFDNAME=a", a2))
	if names() != "stored:a" || isOpen(a) || !isOpen(a2) {
		t.Fatalf("store %q, old open %v", names(), isOpen(a))
	}
	// Over the bound: refused, closed; two at once under one name.
	c1, c2 := memfdT(t), memfdT(t)
	s.fdStoreMsg(msg("FDSTORE=1\nFDNAME=c", c1, c2))
	if names() != "stored:a" || isOpen(c1) || isOpen(c2) {
		t.Fatalf("over the bound: store %q, open %v %v", names(), isOpen(c1), isOpen(c2))
	}
	// Replacing within the bound is fine even when the store is full.
	d := memfdT(t)
	s.fdStoreMsg(msg("FDSTORE=1\nFDNAME=d", d))
	a3 := memfdT(t)
	s.fdStoreMsg(msg("FDSTORE=1\nFDNAME=a", a3))
	if names() != "stored:d:a" || isOpen(a2) {
		t.Fatalf("store %q", names())
	}
	// Refusals, each closing what came.
	for _, m := range []struct {
		payload string
		why     string
	}{
		{"READY=1", "without FDSTORE=1"},
		{"FDSTORE=1\nFDNAME=a:b", "FDNAME"},
		{"FDSTOREREMOVE=1\nFDNAME=d", "carries no descriptors"},
	} {
		fd := memfdT(t)
		s.fdStoreMsg(msg(m.payload, fd))
		if isOpen(fd) {
			t.Errorf("%q: descriptor kept open", m.payload)
		}
	}
	// The last one still removed d.
	if names() != "stored:a" {
		t.Fatalf("store %q", names())
	}
	tr := memfdT(t)
	m := msg("FDSTORE=1\nFDNAME=t", tr)
	m.truncated = true
	s.fdStoreMsg(m)
	if isOpen(tr) || names() != "stored:a" {
		t.Error("a truncated message was kept")
	}
	s.fdStoreMsg(msg("FDSTOREREMOVE=1"))
	s.fdStoreMsg(msg("FDSTORE=1\nFDNAME=x"))
	if names() != "stored:a" {
		t.Fatalf("store %q", names())
	}
	// One warning per sender per interval.
	if n := ev.count(func(e Event) bool {
		w, ok := e.(Warning)
		return ok && strings.Contains(w.Err.Error(), "descriptor store")
	}); n != 1 {
		t.Errorf("%d warnings, want 1 (rate-limited)", n)
	}
	// Off: everything refused.
	off := &Supervisor{}
	off.fdstore.max = -1
	fd := memfdT(t)
	off.fdStoreMsg(msg("FDSTORE=1\nFDNAME=x", fd))
	if isOpen(fd) || len(off.fdstore.entries) != 0 {
		t.Error("the store took a descriptor while off")
	}
	kept := []int{int(s.fdstore.entries[0].f.Fd()), int(s.fdstore.entries[1].f.Fd())}
	s.fdstore.clear()
	for _, fd := range kept {
		if isOpen(fd) {
			t.Error("clear left a descriptor open")
		}
	}
}

// FuzzParseListen: no input panics, and what parses prints back to itself.
func FuzzParseListen(f *testing.F) {
	for _, s := range []string{"http=tcp://127.0.0.1:8080", "a=tcp://:0", "d=udp://[::1]:53", "s=unix:///run/a.sock", "s=unix://@x", "x=tcp://h:1:2", "=", "a=unix://"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseListen(s)
		if err != nil {
			return
		}
		again, err := ParseListen(l.String())
		if err != nil || again != l {
			t.Fatalf("%q parsed as %+v, which prints as %q and parses as %+v, %v", s, l, l.String(), again, err)
		}
	})
}

// The sockets cannot change while the supervisor runs.
func TestReconfigureListenRefused(t *testing.T) {
	cfg := Config{Command: []string{"sleep", "60"}, Hearts: HeartsOff, StopTimeout: 5 * time.Second,
		Listen: []Listen{mustListen(t, "web=tcp://127.0.0.1:0")}}
	s, ev := newTestSupervisor(t, cfg)
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background()) }()
	waitFor(t, "the child", func() bool { return ev.count(func(e Event) bool { _, ok := e.(Started); return ok }) == 1 })
	cfg.StateDir = s.cfg.StateDir
	same := cfg
	same.Restart = RestartAlways
	if err := s.Reconfigure(same); err != nil {
		t.Errorf("same sockets: %v", err)
	}
	changed := cfg
	changed.Listen = []Listen{mustListen(t, "web=tcp://127.0.0.1:1")}
	if err := s.Reconfigure(changed); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "listen") {
		t.Errorf("changed sockets: %v", err)
	}
	changed = cfg
	changed.FDStoreMax = 3
	if err := s.Reconfigure(changed); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "listen") {
		t.Errorf("changed store bound: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// A stored descriptor is passed as it was stored: os/exec takes each
// file's Fd, which must not switch a non-blocking socket to blocking (the
// flag belongs to the open file, shared with the child).
func TestFDStoreKeepsFlags(t *testing.T) {
	s := &Supervisor{}
	s.fdstore.max = 2
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	s.fdStoreMsg(notifyMsg{pid: 1, fields: parseNotify("FDSTORE=1\nFDNAME=conn"), fds: []int{p[0]}})
	defer s.fdstore.clear()
	cmd := &exec.Cmd{}
	if n := s.passFiles(cmd); n != 1 || lookupEnv(cmd.Env, "LISTEN_FDNAMES") != "conn" || lookupEnv(cmd.Env, "LISTEN_FDS") != "1" {
		t.Fatalf("passFiles: %d, %q", n, cmd.Env)
	}
	fd := cmd.ExtraFiles[0].Fd()
	if fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK == 0 {
		t.Errorf("flags %#x, %v: the stored socket became blocking", fl, err)
	}
}
