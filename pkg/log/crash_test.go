package log

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

// TestMain lets the test binary run as a child process that logs and then
// dies abruptly.
func TestMain(m *testing.M) {
	if path := os.Getenv("LOGTEST_CRASH_FILE"); path != "" {
		crashChild(path)
		return
	}
	os.Exit(m.Run())
}

const crashLines = 2000

// crashChild passes crashLines lines of "child output" through a
// synchronous file outlet, then kills itself with SIGKILL: no deferred
// call, no Close, no flush.
func crashChild(path string) {
	g := New()
	if err := g.Configure(
		Spec{Name: "capture", Type: "file_synch", Path: path, Format: FormatJSON},
		Spec{Name: "child", Outlets: []string{"capture"}},
	); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	w := g.Facility("child").LineWriter(func(e *zerolog.Event) { e.Str("stream", "stdout") })
	for i := range crashLines {
		fmt.Fprintf(w, "output line %d\n", i)
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

func TestCrashLosesNothingSynchronous(t *testing.T) {
	path := filepath.Join(t.TempDir(), "capture.log")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOGTEST_CRASH_FILE="+path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != crashLines {
		t.Fatalf("%d lines survived the crash, want %d", len(lines), crashLines)
	}
	for i, l := range lines {
		if !strings.Contains(l, `"message":"output line `+strconv.Itoa(i)+`"`) {
			t.Fatalf("line %d = %q", i, l)
		}
	}
}
