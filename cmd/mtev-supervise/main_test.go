package main

import (
	"context"
	"fmt"
	"github.com/mtev-supervise/mtev-supervise/internal/scripttest"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/internal/cli"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"mtev-supervise": func() { os.Exit(cli.Main(os.Args[1:])) },
		// mtev-notify sends its arguments, one per line, to NOTIFY_SOCKET.
		"mtev-notify": func() { os.Exit(notifyMain(os.Args[1:])) },
	})
}

// TestScripts runs the end-to-end scenarios in testdata/script: real
// supervisors supervising real processes.
func TestScripts(t *testing.T) {
	bin := buildScenarios(t)
	testscript.Run(t, testscript.Params{
		Dir: "../../testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("MTEV_STATE_DIR", filepath.Join(e.WorkDir, "state"))
			e.Setenv("HOME", e.WorkDir)
			// Scenarios that build Go programs share the developer's
			// build cache and modules.
			for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
				out, err := exec.Command("go", "env", k).Output()
				if err != nil {
					return err
				}
				e.Setenv(k, strings.TrimSpace(string(out)))
			}
			e.Setenv("GOTOOLCHAIN", "local")
			e.Setenv("SCENARIOS", bin)
			// Scenarios that link this module's packages replace it with
			// this checkout.
			root, err := filepath.Abs("../..")
			if err != nil {
				return err
			}
			e.Setenv("MTEV_ROOT", root)
			e.Setenv("GOFLAGS", "-mod=mod")
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil // procexec.txtar: creates a user
			}
			if cond != "corefile" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			// The kernel writes core files to the crashing process's
			// directory only when core_pattern is not a pipe.
			b, err := os.ReadFile("/proc/sys/kernel/core_pattern")
			return err == nil && !strings.HasPrefix(string(b), "|"), nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfor":  scripttest.WaitFor,
			"sigsup":   cmdSigSup,
			"sigpid":   cmdSigPID,
			"pidgone":  cmdPIDGone,
			"sigchild": cmdSigChild,
			"mkuser":   cmdMkUser,
			"freeport": cmdFreePort,   // probes_test.go
			"waitstat": cmdWaitStatus, // probes_test.go
		},
	})
}

// buildScenarios builds the programs of testdata/scenarios once, for the
// scripts to run as children ($SCENARIOS/<name>).
func buildScenarios(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir("../../testdata/scenarios")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"build", "-o", dir + "/"}
	for _, e := range entries {
		if e.IsDir() {
			args = append(args, "../../testdata/scenarios/"+e.Name())
		}
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build scenarios: %v\n%s", err, out)
	}
	return dir
}

func parseSig(ts *testscript.TestScript, s string) syscall.Signal {
	sig := unix.SignalNum("SIG" + strings.TrimPrefix(s, "SIG"))
	if sig == 0 {
		ts.Fatalf("unknown signal %s", s)
	}
	return sig
}

// sigsup SIG SERVICE: signal the supervisor of SERVICE.
func cmdSigSup(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: sigsup SIG SERVICE")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := watchdog.Control(ctx, ts.Getenv("MTEV_STATE_DIR"), args[1], "status")
	ts.Check(err)
	ts.Check(syscall.Kill(st.SupervisorPID, parseSig(ts, args[0])))
}

func readPID(ts *testscript.TestScript, file string) int {
	b, err := os.ReadFile(ts.MkAbs(file))
	ts.Check(err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		ts.Fatalf("%s: no pid: %v", file, err)
	}
	return pid
}

// sigchild SIG SERVICE: signal the child of SERVICE, once one runs.
func cmdSigChild(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: sigchild SIG SERVICE")
	}
	var pid int
	ok := scripttest.Poll(func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := watchdog.Control(ctx, ts.Getenv("MTEV_STATE_DIR"), args[1], "status")
		if err != nil || st.PID == 0 {
			return false
		}
		pid = st.PID
		return true
	})
	if !ok {
		ts.Fatalf("sigchild: no child of %s running", args[1])
	}
	ts.Check(syscall.Kill(pid, parseSig(ts, args[0])))
}

// sigpid SIG PIDFILE: signal the process whose pid is in PIDFILE.
func cmdSigPID(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: sigpid SIG PIDFILE")
	}
	ts.Check(syscall.Kill(readPID(ts, args[1]), parseSig(ts, args[0])))
}

// pidgone PIDFILE: wait until the process in PIDFILE no longer exists (a
// zombie counts as gone: it runs no more code).
func cmdPIDGone(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: pidgone PIDFILE")
	}
	pid := readPID(ts, args[0])
	gone := func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		i := strings.LastIndexByte(string(b), ')')
		return i > 0 && i+2 < len(b) && b[i+2] == 'Z'
	}
	if ok := scripttest.Poll(gone); ok == neg {
		ts.Fatalf("pid %d: still alive=%v after %v", pid, !ok, scripttest.WaitLimit)
	}
}

func notifyMain(args []string) int {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		fmt.Fprintln(os.Stderr, "mtev-notify: NOTIFY_SOCKET is not set")
		return 1
	}
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "mtev-notify:", err)
		return 1
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(args, "\n"))); err != nil {
		fmt.Fprintln(os.Stderr, "mtev-notify:", err)
		return 1
	}
	return 0
}
