package trace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/mtev-supervise/mtev-supervise/internal/reap"
)

// gliderWaitDelay is how long RunGlider waits, after killing the glider's
// process group, for it to be reaped.
const gliderWaitDelay = 500 * time.Millisecond

// RunGlider runs the external tracer cmd as "<cmd> <pid> <reason>", the
// convention of libmtev's glider, with its standard output and error
// written to outPath (created or truncated, mode 0644) and its working
// directory set to outPath's directory. reason is "crash/<signal>",
// "watchdog/<heart>" or similar.
//
// The glider runs in its own process group. When budget passes or ctx is
// done, the whole group is killed with SIGKILL and RunGlider returns an
// error wrapping ErrGliderBudget (or ctx's error); it never returns later
// than budget plus half a second. The artifact describes outPath whenever
// the file was created, including after a failure, so partial output is
// kept. A glider that exits non-zero yields an error naming the status.
func RunGlider(ctx context.Context, cmd string, pid int, reason string, outPath string, budget time.Duration) (Artifact, error) {
	art := Artifact{Kind: KindGlider, Path: outPath}
	if cmd == "" {
		return Artifact{}, errors.New("trace: glider: no command")
	}
	if budget <= 0 {
		return Artifact{}, fmt.Errorf("trace: glider: budget %v is not positive", budget)
	}
	out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return Artifact{}, fmt.Errorf("trace: glider: %w", err)
	}
	defer out.Close()

	rctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	c := exec.CommandContext(rctx, cmd, strconv.Itoa(pid), reason)
	c.Dir = filepath.Dir(outPath)
	c.Stdout, c.Stderr = out, out
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error {
		// Kill the whole group: a glider script's own children (gdb,
		// eu-stack, sleep) must not outlive it.
		return syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	c.WaitDelay = gliderWaitDelay
	// Started as an owned process: a supervisor's orphan reaper must not
	// take its exit status.
	runErr := reap.Start(c)
	if runErr == nil {
		runErr = c.Wait()
		reap.Release(c.Process.Pid)
	}
	if runErr == nil {
		// The group may hold orphans the glider left behind.
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	if c.Process == nil {
		return Artifact{}, fmt.Errorf("trace: glider %s: %w", cmd, runErr)
	}
	if fi, err := out.Stat(); err == nil {
		art.Bytes = fi.Size()
	}
	switch {
	case runErr == nil:
		return art, nil
	case errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		return art, fmt.Errorf("trace: glider %s: killed after %v: %w", cmd, budget, ErrGliderBudget)
	case ctx.Err() != nil:
		return art, fmt.Errorf("trace: glider %s: %w", cmd, ctx.Err())
	}
	return art, fmt.Errorf("trace: glider %s: %w", cmd, runErr)
}
