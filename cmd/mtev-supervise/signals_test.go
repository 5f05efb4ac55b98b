package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/internal/scripttest"

	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// HUP, USR1 and USR2 that arrive while the supervisor is still reading its
// configuration do not kill it: its handlers are set before anything else.
// The configuration is a FIFO, so the supervisor waits in its read for as
// long as the test wants.
func TestEarlySignalsDoNotKill(t *testing.T) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "mtev-supervise")
	if err := os.Symlink(exe, bin); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "svc.xml")
	if err := syscall.Mkfifo(cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Env = append(os.Environ(), "MTEV_STATE_DIR="+state)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Wait until it blocks opening the FIFO: past its start-up, in `run`.
	ok := scripttest.Poll(func() bool { return hasOpenFIFO(cmd.Process.Pid) })
	if !ok {
		t.Fatal("the supervisor never reached its configuration")
	}
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2} {
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatalf("%v: %v", sig, err)
		}
	}
	// Non-blocking: with no reader left (the supervisor died of a
	// signal), the open fails instead of waiting.
	f, err := os.OpenFile(cfg, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		cmd.Wait()
		t.Fatalf("the supervisor is gone after early signals: %v (%v)\n%s", err, cmd.ProcessState, stderr.String())
	}
	const conf = `<mtev-supervise><run name="early"><command>sleep</command><arg>1000</arg></run></mtev-supervise>`
	f.WriteString(conf)
	f.Close()
	if !scripttest.Poll(func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := watchdog.Control(ctx, state, "early", "status")
		return err == nil && st.PID != 0
	}) {
		cmd.Process.Kill()
		err := cmd.Wait()
		t.Fatalf("the supervisor did not come up after early signals: %v\n%s", err, stderr.String())
	}
	// The early HUP asks for a reload: it reads the FIFO again (only now
	// that the first read is over: a writer opening earlier would add to it).
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		if f, err := os.OpenFile(cfg, os.O_WRONLY, 0); err == nil {
			f.WriteString(conf)
			f.Close()
		}
	}()
	<-reloaded
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("supervisor: %v\n%s", err, stderr.String())
	}
}

// hasOpenFIFO reports whether a thread of pid is blocked opening or
// reading a FIFO: its open(2) waits until a writer comes.
func hasOpenFIFO(pid int) bool {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/wchan")
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		switch string(b) {
		case "fifo_open", "pipe_read", "pipe_wait", "wait_for_partner":
			return true
		}
	}
	return false
}
