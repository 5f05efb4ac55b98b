package delve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/go-delve/delve/pkg/proc"
	"github.com/go-delve/delve/pkg/proc/core"
	"github.com/go-delve/delve/pkg/proc/native"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// Errors returned by this package; test with errors.Is. A process that is
// gone (exited, possibly not yet reaped) gives an error wrapping
// os.ErrProcessDone.
var (
	// ErrNoDebugInfo: the executable has no DWARF debug information (it was
	// built with -ldflags=-s or -w, or stripped), so goroutines cannot be read.
	ErrNoDebugInfo = errors.New("no debug information")
	// ErrNotGo: the executable is not a Go program.
	ErrNotGo = errors.New("not a Go program")
	// ErrGoVersion: the executable was built by a Go version this build of
	// Delve cannot read.
	ErrGoVersion = errors.New("unsupported Go version")
	// ErrPtrace: the kernel refused to let this process trace the target.
	ErrPtrace = errors.New("ptrace refused")
	// ErrBudget: the capture ran past Options.Budget (or its context ended);
	// the process was detached and the partial result is returned.
	ErrBudget = errors.New("capture budget exceeded")
)

// DefaultMaxFrames is the number of frames read per goroutine and per thread
// when Options.MaxFrames is zero.
const DefaultMaxFrames = 64

// Options tune a capture. The zero value reads everything with no budget.
type Options struct {
	// Budget bounds the whole capture, attach included. Past it the read
	// stops, the process is detached and the partial result is returned with
	// an error wrapping ErrBudget. The threads and the goroutines on them
	// are read even past the budget (they are few and name the likely
	// culprit). Zero means no budget beyond the context.
	Budget time.Duration
	// MaxGoroutines bounds the goroutines read (zero: all). Goroutines that
	// are on an OS thread are always included, past the limit if need be.
	MaxGoroutines int
	// MaxFrames bounds the frames read per goroutine and thread (zero:
	// DefaultMaxFrames).
	MaxFrames int
	// DebugInfoDirs are folders searched for split debug information (files
	// named by the executable's .gnu_debuglink or build id).
	DebugInfoDirs []string
	// Now is the clock the budget is measured with (default time.Now).
	Now func() time.Time
	// StopFirst stops the process with SIGSTOP before attaching and
	// continues it with SIGCONT after detaching. An attach to a running
	// process may wait 200 ms inside Delve for the stop to be reported; one
	// to a stopped process does not. A program may observe the SIGCONT: use
	// it when the process is to be killed after the capture anyway.
	StopFirst bool
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) maxFrames() int {
	if o.MaxFrames > 0 {
		return o.MaxFrames
	}
	return DefaultMaxFrames
}

// Result is what a capture read.
type Result struct {
	// Goroutines in the runtime's order (allgs), dead ones left out.
	// Goroutine.Culprit is set on each running goroutine that is not a
	// runtime goroutine: the candidates when a loop spins without yielding.
	// For a stalled heart the caller picks by thread id (OnThread).
	Goroutines []trace.Goroutine
	// Threads are the process's OS threads.
	Threads []trace.Thread
	// GoVersion is the Go version that built the executable ("go1.26.8").
	GoVersion string
	// Truncated is set when goroutines were left out (MaxGoroutines, budget).
	Truncated bool
	// Unreadable counts goroutines whose runtime structure could not be read
	// (left out of Goroutines).
	Unreadable int

	// Attach is the time to stop the process and load its debug
	// information (for a core: to open it), Read the time to read
	// goroutines and threads, Detach the time to let the process go.
	Attach, Read, Detach time.Duration
	// Pause is how long the process was stopped (zero for a core). It is an
	// upper bound: Detach includes a fixed 50 ms wait inside Delve after the
	// threads are released.
	Pause time.Duration
}

// Total is the whole capture time.
func (r *Result) Total() time.Duration { return r.Attach + r.Read + r.Detach }

// OnThread returns the goroutine that was on OS thread tid, or nil. The
// pointer is into r.Goroutines, so a caller may set its Culprit field.
func (r *Result) OnThread(tid int) *trace.Goroutine {
	for i := range r.Goroutines {
		if r.Goroutines[i].ThreadID == tid && tid != 0 {
			return &r.Goroutines[i]
		}
	}
	return nil
}

// Culprits returns the goroutines marked as culprit candidates.
func (r *Result) Culprits() []*trace.Goroutine {
	var out []*trace.Goroutine
	for i := range r.Goroutines {
		if r.Goroutines[i].Culprit {
			out = append(out, &r.Goroutines[i])
		}
	}
	return out
}

// beforeAttach, when set (by tests), is called just before a process is
// attached.
var beforeAttach func(pid int)

// Capture attaches to the live process pid, reads its goroutines and
// threads, and detaches, leaving it running. It never kills the process.
// On ErrBudget (or a context that ends during the read) the partial result
// is returned along with the error; on any other error the result is nil.
// If detaching itself fails the process may be left stopped and traced:
// the caller should kill it.
func Capture(ctx context.Context, pid int, opts Options) (*Result, error) {
	start := opts.now()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("delve: capture: %w", err)
	}
	exe, err := processExe(pid)
	if err != nil {
		return nil, fmt.Errorf("delve: capture: %w", err)
	}
	bin, err := inspect(exe, opts.DebugInfoDirs)
	if err != nil {
		return nil, fmt.Errorf("delve: capture: pid %d: %w", pid, err)
	}
	grp, attachTime, err := attach(pid, opts.DebugInfoDirs, opts.StopFirst)
	if err != nil {
		return nil, fmt.Errorf("delve: capture: %w", err)
	}
	mono := monotonicNow()
	res := &Result{GoVersion: bin.GoVersion, Attach: attachTime}

	t0 := time.Now()
	rd := &reader{tgt: grp.Selected, opts: &opts, mono: mono, deadline: deadline(start, opts.Budget)}
	readErr := rd.read(ctx, res)
	res.Read = time.Since(t0)

	t1 := time.Now()
	detachErr := grp.Detach(false)
	if opts.StopFirst {
		syscall.Kill(pid, syscall.SIGCONT)
	}
	res.Detach = time.Since(t1)
	res.Pause = res.Attach + res.Read + res.Detach

	if detachErr != nil {
		return nil, fmt.Errorf("delve: capture: detach pid %d: %w", pid, detachErr)
	}
	if readErr != nil {
		if errors.Is(readErr, ErrBudget) {
			return res, fmt.Errorf("delve: capture: pid %d: %w", pid, readErr)
		}
		return nil, fmt.Errorf("delve: capture: pid %d: %w", pid, readErr)
	}
	return res, nil
}

// DumpCore stops the live process pid just long enough to write a core file
// of it to path, then detaches, leaving it running. It returns how long the
// process was stopped. The core is read later with ReadCore.
func DumpCore(ctx context.Context, pid int, path string) (time.Duration, error) {
	return DumpCoreWith(ctx, pid, path, Options{})
}

// DumpCoreWith is DumpCore with options; only StopFirst and DebugInfoDirs
// apply.
func DumpCoreWith(ctx context.Context, pid int, path string, opts Options) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("delve: dump core: %w", err)
	}
	exe, err := processExe(pid)
	if err != nil {
		return 0, fmt.Errorf("delve: dump core: %w", err)
	}
	if _, err := inspect(exe, nil); err != nil {
		return 0, fmt.Errorf("delve: dump core: pid %d: %w", pid, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("delve: dump core: %w", err)
	}
	grp, attachTime, err := attach(pid, opts.DebugInfoDirs, opts.StopFirst)
	if err != nil {
		f.Close()
		os.Remove(path)
		return 0, fmt.Errorf("delve: dump core: %w", err)
	}
	t0 := time.Now()
	state := &proc.DumpState{}
	dumpErr := safely(func() error {
		grp.Selected.Dump(f, 0, state) // closes f
		return state.Err
	})
	detachErr := grp.Detach(false)
	if opts.StopFirst {
		syscall.Kill(pid, syscall.SIGCONT)
	}
	pause := attachTime + time.Since(t0)
	if dumpErr != nil {
		os.Remove(path)
		return pause, fmt.Errorf("delve: dump core: pid %d: %w", pid, dumpErr)
	}
	if detachErr != nil {
		return pause, fmt.Errorf("delve: dump core: detach pid %d: %w", pid, detachErr)
	}
	return pause, nil
}

// ReadCore reads the goroutines and threads of a core file written by
// DumpCore or by the kernel. exePath is the executable that produced it.
// Wait times are computed against the core file's modification time, which
// is only meaningful if the machine has not rebooted since; otherwise they
// are zero. MaxGoroutines, MaxFrames and Budget apply as for Capture.
func ReadCore(corePath, exePath string, opts Options) (*Result, error) {
	start := opts.now()
	bin, err := inspect(exePath, opts.DebugInfoDirs)
	if err != nil {
		return nil, fmt.Errorf("delve: read core: %w", err)
	}
	fi, err := os.Stat(corePath)
	if err != nil {
		return nil, fmt.Errorf("delve: read core: %w", err)
	}
	t0 := time.Now()
	var grp *proc.TargetGroup
	err = safely(func() error {
		var err error
		grp, err = core.OpenCore(corePath, exePath, opts.DebugInfoDirs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delve: read core: %s: %w", corePath, classify(err))
	}
	res := &Result{GoVersion: bin.GoVersion, Attach: time.Since(t0)}
	rd := &reader{tgt: grp.Selected, opts: &opts, mono: monotonicAt(fi.ModTime()), deadline: deadline(start, opts.Budget)}
	t1 := time.Now()
	readErr := rd.read(context.Background(), res)
	res.Read = time.Since(t1)
	grp.Detach(false) // closes the core's files; cannot fail in a useful way
	if readErr != nil {
		if errors.Is(readErr, ErrBudget) {
			return res, fmt.Errorf("delve: read core: %s: %w", corePath, readErr)
		}
		return nil, fmt.Errorf("delve: read core: %s: %w", corePath, readErr)
	}
	return res, nil
}

func deadline(start time.Time, budget time.Duration) time.Time {
	if budget <= 0 {
		return time.Time{}
	}
	return start.Add(budget)
}

// attach stops every thread of pid and loads the debug information.
func attach(pid int, dirs []string, stopFirst bool) (*proc.TargetGroup, time.Duration, error) {
	if beforeAttach != nil {
		beforeAttach(pid)
	}
	t0 := time.Now()
	if stopFirst {
		stopProcess(pid)
	}
	var grp *proc.TargetGroup
	err := safely(func() error {
		var err error
		grp, err = native.Attach(pid, nil, dirs)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("attach pid %d: %w", pid, classifyAttach(pid, err))
	}
	return grp, time.Since(t0), nil
}

// stopProcess sends SIGSTOP to pid and waits, briefly, until its state is
// "stopped". A process that does not stop in time is attached anyway.
func stopProcess(pid int) {
	if syscall.Kill(pid, syscall.SIGSTOP) != nil {
		return
	}
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		if st, err := processState(pid); err != nil || st == 'T' || st == 't' {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// classifyAttach maps an attach failure to this package's errors.
func classifyAttach(pid int, err error) error {
	switch {
	case errors.Is(err, syscall.ESRCH):
		return fmt.Errorf("%w: %w", os.ErrProcessDone, err)
	case errors.Is(err, syscall.EPERM):
		if st, serr := processState(pid); serr != nil || st == 'Z' || st == 'X' {
			return fmt.Errorf("%w (process exited): %w", os.ErrProcessDone, err)
		}
		return fmt.Errorf("%w: %w; %s", ErrPtrace, err, ptraceHint(pid))
	}
	return classify(err)
}

// classify recognises Delve's complaint about missing debug information.
func classify(err error) error {
	var bad *proc.ErrBadBinaryInfo
	if errors.As(err, &bad) || containsAny(err.Error(), "could not find goroutine array", "could not get .debug_frame", "no debug info") {
		return fmt.Errorf("%w: the binary was built with -ldflags=-s or -w, or stripped; rebuild it without them: %w", ErrNoDebugInfo, err)
	}
	return err
}

// safely runs f, turning a panic inside Delve into an error so a damaged
// target cannot bring down the caller.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error in delve: %v", r)
		}
	}()
	return f()
}

func processExe(pid int) (string, error) {
	if pid <= 0 {
		return "", fmt.Errorf("bad pid %d", pid)
	}
	st, err := processState(pid)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("pid %d: %w", pid, os.ErrProcessDone)
		}
		return "", fmt.Errorf("pid %d: %w", pid, err)
	}
	if st == 'Z' || st == 'X' {
		return "", fmt.Errorf("pid %d: %w (exited, not yet reaped)", pid, os.ErrProcessDone)
	}
	return "/proc/" + strconv.Itoa(pid) + "/exe", nil
}
