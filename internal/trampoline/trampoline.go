package trampoline

import (
	"runtime"
	"syscall"
)

// The environment of a trampoline.
const (
	Env       = "MTEV_TRAMPOLINE"        // "1": this process is a trampoline
	PathEnv   = "MTEV_TRAMPOLINE_PATH"   // the command to exec
	AttrsEnv  = "MTEV_TRAMPOLINE_ATTRS"  // what to apply, see Attrs
	DirEnv    = "MTEV_TRAMPOLINE_DIR"    // the working directory, when set
	StatusEnv = "MTEV_TRAMPOLINE_STATUS" // the status descriptor
)

// Exit is the status of a trampoline that could not exec its command.
const Exit = 127

// Limit is one resource limit to set; Name is the attribute, for messages.
type Limit struct {
	Name       string
	Resource   int
	Soft, Hard uint64
}

// Attrs is what the trampoline applies besides the directory.
type Attrs struct {
	Limits   []Limit
	Umask    int // -1: unchanged
	SetUser  bool
	UID, GID int
	Groups   []int
}

// Encode describes a for AttrsEnv: space-separated fields
// "limit=RES:SOFT:HARD:NAME", "umask=N", "ids=UID:GID:G1,G2".
func (a *Attrs) Encode() string {
	var b []byte
	for _, l := range a.Limits {
		b = append(b, "limit="...)
		b = appendUint(b, uint64(l.Resource))
		b = append(b, ':')
		b = appendUint(b, l.Soft)
		b = append(b, ':')
		b = appendUint(b, l.Hard)
		b = append(b, ':')
		b = append(b, l.Name...)
		b = append(b, ' ')
	}
	if a.Umask >= 0 {
		b = append(b, "umask="...)
		b = appendUint(b, uint64(a.Umask))
		b = append(b, ' ')
	}
	if a.SetUser {
		b = append(b, "ids="...)
		b = appendUint(b, uint64(a.UID))
		b = append(b, ':')
		b = appendUint(b, uint64(a.GID))
		b = append(b, ':')
		for i, g := range a.Groups {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendUint(b, uint64(g))
		}
		b = append(b, ' ')
	}
	if len(b) > 0 {
		b = b[:len(b)-1]
	}
	return string(b)
}

// badAttr is the error of a field Decode cannot read.
type badAttr string

func (e badAttr) Error() string { return "bad attribute \"" + string(e) + "\"" }

// Decode reads what Encode wrote.
func Decode(s string) (*Attrs, error) {
	a := &Attrs{Umask: -1}
	for _, f := range split(s, ' ') {
		if f == "" {
			continue
		}
		k, v := cut(f, '=')
		p := split(v, ':')
		switch k {
		case "limit":
			if len(p) != 4 {
				return nil, badAttr(f)
			}
			res, ok1 := atou(p[0])
			soft, ok2 := atou(p[1])
			hard, ok3 := atou(p[2])
			if !ok1 || !ok2 || !ok3 || res > 64 {
				return nil, badAttr(f)
			}
			a.Limits = append(a.Limits, Limit{Name: p[3], Resource: int(res), Soft: soft, Hard: hard})
		case "umask":
			n, ok := atou(v)
			if !ok || n > 0o777 {
				return nil, badAttr(f)
			}
			a.Umask = int(n)
		case "ids":
			if len(p) != 3 {
				return nil, badAttr(f)
			}
			uid, ok1 := atou(p[0])
			gid, ok2 := atou(p[1])
			if !ok1 || !ok2 || uid > 1<<32-1 || gid > 1<<32-1 {
				return nil, badAttr(f)
			}
			a.SetUser, a.UID, a.GID = true, int(uid), int(gid)
			for _, g := range split(p[2], ',') {
				if g == "" {
					continue
				}
				n, ok := atou(g)
				if !ok || n > 1<<32-1 {
					return nil, badAttr(f)
				}
				a.Groups = append(a.Groups, int(n))
			}
		default:
			return nil, badAttr(f)
		}
	}
	return a, nil
}

func init() {
	snapshotPassed()
	if v, _ := syscall.Getenv(Env); v != "1" {
		return
	}
	run()
}

// PassedFD is one descriptor a service manager passed to this process.
type PassedFD struct {
	FD       int
	Open     bool   // it was open when the process started, inherited through exec
	Dev, Ino uint64 // what it referred to then
}

// Passed lists the descriptors a service manager passed to this process
// (LISTEN_FDS from fd 3, LISTEN_PID naming this process), as found by
// this package's init, before any other package's init or the Go runtime's
// poller could open a descriptor at one of those numbers: a supervisor
// that adopts them checks each still refers to the same file, and never
// takes a descriptor of its own for one the manager did not pass.
var Passed []PassedFD

func snapshotPassed() {
	pid, _ := syscall.Getenv("LISTEN_PID")
	if p, ok := atou(pid); !ok || p != uint64(syscall.Getpid()) {
		return
	}
	nfds, _ := syscall.Getenv("LISTEN_FDS")
	n, ok := atou(nfds)
	if !ok || n == 0 || n > 4096 {
		return
	}
	for fd := 3; fd < 3+int(n); fd++ {
		// A descriptor that came through exec has no close-on-exec flag;
		// one with it was opened by this process already: the Go runtime
		// opens its cgroup CPU files before any package init, at the
		// lowest free numbers, which a count larger than what was passed
		// would name.
		flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
		var st syscall.Stat_t
		open := errno == 0 && flags&syscall.FD_CLOEXEC == 0 && syscall.Fstat(fd, &st) == nil
		Passed = append(Passed, PassedFD{FD: fd, Open: open, Dev: uint64(st.Dev), Ino: uint64(st.Ino)})
	}
}

// status is the status descriptor, -1 when there is none.
var status = -1

// fail writes the reason on stderr and the status descriptor, and exits.
func fail(parts ...string) {
	msg := "mtev-supervise trampoline: "
	for _, p := range parts {
		msg += p
	}
	syscall.Write(2, []byte(msg+"\n"))
	if status >= 0 {
		syscall.Write(status, []byte(msg))
	}
	syscall.Exit(Exit)
}

func run() {
	// The parent-death signal belongs to the thread that sets it, and
	// only the thread that calls exec lives on: both on this one.
	runtime.LockOSThread()
	path, _ := syscall.Getenv(PathEnv)
	attrs, _ := syscall.Getenv(AttrsEnv)
	dir, hasDir := syscall.Getenv(DirEnv)
	if v, ok := syscall.Getenv(StatusEnv); ok {
		if n, ok := atou(v); ok && n > 2 && n < 1<<20 {
			status = int(n)
			syscall.CloseOnExec(status)
		}
	}
	for _, k := range []string{Env, PathEnv, AttrsEnv, DirEnv, StatusEnv} {
		syscall.Unsetenv(k)
	}
	argv := args()
	if path == "" || len(argv) < 2 {
		fail("no command")
	}
	ppid := syscall.Getppid()
	a, err := Decode(attrs)
	if err != nil {
		fail(err.Error())
	}
	for _, l := range a.Limits {
		// syscall.Setrlimit: for RLIMIT_NOFILE it also stops the exec
		// below from restoring the soft limit Go found at start.
		if err := syscall.Setrlimit(l.Resource, &syscall.Rlimit{Cur: l.Soft, Max: l.Hard}); err != nil {
			fail(l.Name, " ", limitString(l.Soft, l.Hard), ": ", err.Error())
		}
	}
	if a.Umask >= 0 {
		syscall.Umask(a.Umask)
	}
	if hasDir {
		if err := syscall.Chdir(dir); err != nil {
			fail("dir ", dir, ": ", err.Error())
		}
	}
	if a.SetUser {
		if err := syscall.Setgroups(a.Groups); err != nil {
			fail("groups: ", err.Error())
		}
		if err := syscall.Setgid(a.GID); err != nil {
			fail("gid ", utoa(uint64(a.GID)), ": ", err.Error())
		}
		if err := syscall.Setuid(a.UID); err != nil {
			fail("uid ", utoa(uint64(a.UID)), ": ", err.Error())
		}
		// The change of credentials cleared the parent-death signal.
		if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); e != 0 {
			fail("parent-death signal: ", e.Error())
		}
		if syscall.Getppid() != ppid {
			fail("the supervisor died")
		}
	}
	pid := utoa(uint64(syscall.Getpid()))
	if _, ok := syscall.Getenv("WATCHDOG_USEC"); ok {
		syscall.Setenv("WATCHDOG_PID", pid)
	}
	if _, ok := syscall.Getenv("LISTEN_FDS"); ok {
		syscall.Setenv("LISTEN_PID", pid)
	}
	err = syscall.Exec(path, argv[1:], syscall.Environ())
	fail("exec ", path, ": ", err.Error())
}

// args reads this process's arguments from /proc/self/cmdline (os.Args
// is set by package os, initialised later).
func args() []string {
	fd, err := syscall.Open("/proc/self/cmdline", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		fail("/proc/self/cmdline: ", err.Error())
	}
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			fail("/proc/self/cmdline: ", err.Error())
		}
		if n <= 0 {
			break
		}
		b = append(b, buf[:n]...)
	}
	syscall.Close(fd)
	if len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return split(string(b), 0)
}

func limitString(soft, hard uint64) string {
	v := func(n uint64) string {
		if n == ^uint64(0) {
			return "infinity"
		}
		return utoa(n)
	}
	if soft == hard {
		return v(soft)
	}
	return v(soft) + ":" + v(hard)
}

func split(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func cut(s string, sep byte) (string, string) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func atou(s string) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func utoa(n uint64) string { return string(appendUint(nil, n)) }

func appendUint(b []byte, n uint64) []byte {
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}
