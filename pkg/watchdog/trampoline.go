package watchdog

import (
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// The trampoline: a child under a notify watchdog must see WATCHDOG_PID set
// to its own pid, and a child given sockets LISTEN_PID, which is known
// only after the fork. The supervisor then starts its own executable with
// trampolineEnv set; this package's init sees it, sets WATCHDOG_PID (when
// WATCHDOG_USEC is set) and LISTEN_PID (when LISTEN_FDS is set) to the
// (unchanged) pid and execs the real
// command, named in trampolinePathEnv, with the remaining arguments. Any
// binary that links this package can be a trampoline; the exec replaces it
// before its main runs.
const (
	trampolineEnv     = "MTEV_TRAMPOLINE"
	trampolinePathEnv = "MTEV_TRAMPOLINE_PATH"
)

func init() {
	if os.Getenv(trampolineEnv) != "1" {
		return
	}
	path := os.Getenv(trampolinePathEnv)
	os.Unsetenv(trampolineEnv)
	os.Unsetenv(trampolinePathEnv)
	if _, ok := os.LookupEnv("WATCHDOG_USEC"); ok {
		os.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	}
	if _, ok := os.LookupEnv("LISTEN_FDS"); ok {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	if path == "" || len(os.Args) < 2 {
		os.Stderr.WriteString("mtev-supervise trampoline: no command\n")
		os.Exit(127)
	}
	err := syscall.Exec(path, os.Args[1:], os.Environ())
	os.Stderr.WriteString("mtev-supervise trampoline: exec " + path + ": " + err.Error() + "\n")
	os.Exit(127)
}

// selfExe is the running executable, for the trampoline. The path is
// resolved by the forked child, which is still this image: it works even
// when the executable was replaced or deleted on disk.
func selfExe() string { return "/proc/self/exe" }

// unixSignal maps "SIGSEGV" back to the signal.
func unixSignal(name string) syscall.Signal {
	return unix.SignalNum(name)
}
