package watchdog

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The trampoline: the one place where the child's process attributes are
// applied between fork and exec. The supervisor starts its own executable
// (/proc/self/exe, readable whatever user the child is to become) with
// trampolineEnv set; this package's init sees it, before the program's
// main runs, and in this order:
//
//  1. sets the resource limits, the umask and the working directory;
//  2. sets the supplementary groups, the gid and the uid (Go's syscall
//     package changes them on every thread), then arms PR_SET_PDEATHSIG
//     again, since a change of credentials clears it, and exits if the
//     supervisor died meanwhile;
//  3. sets WATCHDOG_PID to its own pid when WATCHDOG_USEC is set, and
//     LISTEN_PID to its own pid when LISTEN_FDS is set: these name the
//     child's pid, known only after the fork, and exec keeps the pid;
//  4. execs the command named in trampolinePathEnv with the remaining
//     arguments.
//
// What it applies is described in its environment (trampolineAttrsEnv,
// trampolineDirEnv), removed before the exec. Its status descriptor
// (trampolineStatusEnv) is close-on-exec: the supervisor reads EOF when the
// exec succeeded, or the one-line reason of a failure, which also goes to
// the child's stderr before the trampoline exits with status 127.
const (
	trampolineEnv       = "MTEV_TRAMPOLINE"
	trampolinePathEnv   = "MTEV_TRAMPOLINE_PATH"
	trampolineAttrsEnv  = "MTEV_TRAMPOLINE_ATTRS"
	trampolineDirEnv    = "MTEV_TRAMPOLINE_DIR"
	trampolineStatusEnv = "MTEV_TRAMPOLINE_STATUS"
)

// trampolineExit is the status of a trampoline that could not exec.
const trampolineExit = 127

func init() {
	if os.Getenv(trampolineEnv) != "1" {
		return
	}
	trampoline()
}

func trampoline() {
	// The parent-death signal is a property of the thread that sets it,
	// and only the thread that calls exec lives on: both on this one.
	runtime.LockOSThread()
	path := os.Getenv(trampolinePathEnv)
	attrs := os.Getenv(trampolineAttrsEnv)
	dir, hasDir := os.LookupEnv(trampolineDirEnv)
	status := -1
	if v := os.Getenv(trampolineStatusEnv); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 2 {
			status = n
			unix.CloseOnExec(n)
		}
	}
	for _, k := range []string{trampolineEnv, trampolinePathEnv, trampolineAttrsEnv, trampolineDirEnv, trampolineStatusEnv} {
		os.Unsetenv(k)
	}
	fail := func(format string, args ...any) {
		msg := "mtev-supervise trampoline: " + fmt.Sprintf(format, args...)
		os.Stderr.WriteString(msg + "\n")
		if status >= 0 {
			unix.Write(status, []byte(msg))
		}
		os.Exit(trampolineExit)
	}
	if path == "" || len(os.Args) < 2 {
		fail("no command")
	}
	ppid := os.Getppid()
	a, err := decodeAttrs(attrs)
	if err != nil {
		fail("%v", err)
	}
	for _, l := range a.limits {
		// syscall.Setrlimit, not unix's: for RLIMIT_NOFILE it also stops
		// the exec below from restoring the soft limit Go found at start.
		if err := syscall.Setrlimit(l.resource, &syscall.Rlimit{Cur: l.Soft, Max: l.Hard}); err != nil {
			fail("%s %s: %v", l.name, l.Limit, err)
		}
	}
	if a.umask >= 0 {
		syscall.Umask(a.umask)
	}
	if hasDir {
		if err := syscall.Chdir(dir); err != nil {
			fail("dir %s: %v", dir, err)
		}
	}
	if a.setUser {
		if err := syscall.Setgroups(a.groups); err != nil {
			fail("groups %v: %v", a.groups, err)
		}
		if err := syscall.Setgid(a.gid); err != nil {
			fail("gid %d: %v", a.gid, err)
		}
		if err := syscall.Setuid(a.uid); err != nil {
			fail("uid %d: %v", a.uid, err)
		}
		// The change of credentials cleared the parent-death signal.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
			fail("parent-death signal: %v", err)
		}
		if os.Getppid() != ppid {
			fail("the supervisor died")
		}
	}
	if os.Getenv("WATCHDOG_USEC") != "" {
		os.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	}
	if _, ok := os.LookupEnv("LISTEN_FDS"); ok {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	err = syscall.Exec(path, os.Args[1:], os.Environ())
	fail("exec %s: %v", path, err)
}

// encode describes a for the trampoline: space-separated fields
// "limit=RES:SOFT:HARD", "umask=N", "ids=UID:GID:G1,G2"; the directory goes
// in a variable of its own.
func (a *procAttrs) encode() string {
	var b strings.Builder
	for _, l := range a.limits {
		fmt.Fprintf(&b, "limit=%d:%d:%d:%s ", l.resource, l.Soft, l.Hard, l.name)
	}
	if a.umask >= 0 {
		fmt.Fprintf(&b, "umask=%d ", a.umask)
	}
	if a.setUser {
		g := make([]string, len(a.groups))
		for i, n := range a.groups {
			g[i] = strconv.Itoa(n)
		}
		fmt.Fprintf(&b, "ids=%d:%d:%s ", a.uid, a.gid, strings.Join(g, ","))
	}
	return strings.TrimSpace(b.String())
}

func decodeAttrs(s string) (*procAttrs, error) {
	a := &procAttrs{umask: -1}
	bad := func(f string) (*procAttrs, error) {
		return nil, fmt.Errorf("bad attribute %q", f)
	}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		p := strings.Split(v, ":")
		switch k {
		case "limit":
			if len(p) != 4 {
				return bad(f)
			}
			res, err1 := strconv.Atoi(p[0])
			soft, err2 := strconv.ParseUint(p[1], 10, 64)
			hard, err3 := strconv.ParseUint(p[2], 10, 64)
			if err := errors.Join(err1, err2, err3); err != nil {
				return bad(f)
			}
			a.limits = append(a.limits, rlimit{name: p[3], resource: res, Limit: Limit{soft, hard}})
		case "umask":
			n, err := strconv.Atoi(v)
			if err != nil {
				return bad(f)
			}
			a.umask = n
		case "ids":
			if len(p) != 3 {
				return bad(f)
			}
			uid, err1 := strconv.Atoi(p[0])
			gid, err2 := strconv.Atoi(p[1])
			if err := errors.Join(err1, err2); err != nil {
				return bad(f)
			}
			a.setUser, a.uid, a.gid = true, uid, gid
			for _, g := range strings.Split(p[2], ",") {
				if g == "" {
					continue
				}
				n, err := strconv.Atoi(g)
				if err != nil {
					return bad(f)
				}
				a.groups = append(a.groups, n)
			}
		default:
			return bad(f)
		}
	}
	return a, nil
}

// throughTrampoline makes cmd start the trampoline, which applies a (nil:
// nothing) and execs path. It returns the read end of the status pipe,
// which the caller reads with awaitExec once the process started, and
// closes.
func throughTrampoline(cmd *exec.Cmd, path string, a *procAttrs) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("watchdog: trampoline: pipe: %w", err)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	fd := 2 + len(cmd.ExtraFiles)
	cmd.Env = append(cmd.Env,
		trampolineEnv+"=1",
		trampolinePathEnv+"="+path,
		trampolineStatusEnv+"="+strconv.Itoa(fd),
	)
	if a != nil {
		if s := a.encode(); s != "" {
			cmd.Env = append(cmd.Env, trampolineAttrsEnv+"="+s)
		}
		if a.dir != "" {
			cmd.Env = append(cmd.Env, trampolineDirEnv+"="+a.dir)
			cmd.Dir = "" // the trampoline changes it, after the limits and umask
		}
	}
	cmd.Args = append([]string{cmd.Args[0]}, cmd.Args...)
	cmd.Path = selfExe()
	return r, nil
}

// trampolineBudget bounds the wait for a trampoline to exec: past it the
// child is watched as if it had.
const trampolineBudget = 10 * time.Second

// awaitExec reads a trampoline's status pipe: nil once it exec'd the
// command (EOF), else its reason. It closes r and the write end left in
// cmd.ExtraFiles.
func awaitExec(cmd *exec.Cmd, r *os.File) error {
	if n := len(cmd.ExtraFiles); n > 0 {
		cmd.ExtraFiles[n-1].Close()
	}
	defer r.Close()
	r.SetReadDeadline(time.Now().Add(trampolineBudget))
	buf := make([]byte, 512)
	n, _ := r.Read(buf)
	if n == 0 {
		return nil
	}
	return errors.New(strings.TrimPrefix(string(buf[:n]), "mtev-supervise trampoline: "))
}

// selfExe is the running executable, for the trampoline. The path is
// resolved by the forked child, which is still this image: it works even
// when the executable was replaced or deleted on disk.
func selfExe() string { return "/proc/self/exe" }

// unixSignal maps "SIGSEGV" back to the signal.
func unixSignal(name string) syscall.Signal {
	return unix.SignalNum(name)
}
