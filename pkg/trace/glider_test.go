package trace

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "glider.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunGlider(t *testing.T) {
	outDir := t.TempDir()
	tests := []struct {
		name    string
		script  string
		want    string // output must contain
		wantErr string // error must contain; "" for none
	}{
		{"ok", `echo "pid=$1 reason=$2 cwd=$(pwd)"; echo oops >&2`, "pid=4242 reason=watchdog/e:default/1 cwd=" + outDir + "\noops\n", ""},
		{"fails", `echo partial; exit 3`, "partial\n", "exit status 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(outDir, tc.name+".trc")
			art, err := RunGlider(context.Background(), writeScript(t, tc.script), 4242, "watchdog/e:default/1", out, 10*time.Second)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			b, rerr := os.ReadFile(out)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if !strings.Contains(string(b), tc.want) {
				t.Errorf("output %q, want %q", b, tc.want)
			}
			if art.Kind != "glider-output" || art.Path != out || art.Bytes != int64(len(b)) {
				t.Errorf("artifact %+v, file has %d bytes", art, len(b))
			}
		})
	}
}

// TestRunGliderBudget: a glider that hangs, with a child of its own that
// would outlive it, is killed with its whole process group at the budget;
// its partial output is kept.
func TestRunGliderBudget(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "sleeper.pid")
	script := writeScript(t, `echo started; sleep 300 & echo $! > `+pidFile+`; wait`)
	out := filepath.Join(dir, "hang.trc")
	art, err := RunGlider(context.Background(), script, 1, "crash/SIGSEGV", out, 300*time.Millisecond)
	if !errors.Is(err, ErrGliderBudget) {
		t.Fatalf("err = %v, want ErrGliderBudget", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "started\n" || art.Bytes != int64(len(b)) {
		t.Errorf("partial output %q, artifact %+v", b, art)
	}
	raw, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	deadline := time.Now().Add(5 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("glider's child %d outlived the budget", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processAlive reports whether pid runs and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i+1:], " Z")
}

func TestRunGliderCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := RunGlider(ctx, writeScript(t, "sleep 300"), 1, "r", filepath.Join(t.TempDir(), "o"), time.Minute)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestRunGliderBadInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, cmd, out string
		budget         time.Duration
	}{
		{"no command", "", filepath.Join(dir, "a"), time.Second},
		{"missing command", filepath.Join(dir, "nope"), filepath.Join(dir, "b"), time.Second},
		{"bad budget", "/bin/true", filepath.Join(dir, "c"), 0},
		{"bad output dir", "/bin/true", filepath.Join(dir, "missing", "d"), time.Second},
	}
	for _, tc := range tests {
		if _, err := RunGlider(context.Background(), tc.cmd, 1, "r", tc.out, tc.budget); err == nil || !strings.HasPrefix(err.Error(), "trace: glider") {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}
