package delve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/capture"
)

// Importing this package adds the capture from outside to the
// supervisor's capture chain (package watchdog/capture): Delve live, and
// above the core threshold Delve core, for a stalled child that cannot
// dump itself; the reading of core files crashes leave; and the check of
// each executable at start. A program that does not import it does not
// link Delve.
func init() {
	capture.Register(20, coreMethod{})
	capture.Register(21, liveMethod{})
	capture.RegisterReader(20, coreFileReader{})
	capture.RegisterChecker(checker{})
}

// wantsCore says whether a stall is captured through a core file: a hard
// stall of a process above the RSS threshold, which is killed as soon as
// its core is written so that the restart does not wait for the analysis.
func wantsCore(t *capture.Target, rec *trace.Record) bool {
	return t.Kill && t.CoreAboveRSS > 0 && rec.Resources != nil && rec.Resources.RSSBytes > t.CoreAboveRSS
}

type liveMethod struct{}

func (liveMethod) Name() trace.Method { return capture.Delve }

func (liveMethod) Applies(t *capture.Target, rec *trace.Record, captured bool) bool {
	return !captured && !wantsCore(t, rec)
}

// Capture attaches, reads every goroutine and thread, and detaches. A
// process to be killed afterwards is stopped first: the attach is then
// shorter (see Options.StopFirst).
func (liveMethod) Capture(ctx context.Context, t *capture.Target, rec *trace.Record) error {
	res, err := Capture(ctx, t.PID, Options{Budget: t.Budget, StopFirst: t.Kill})
	if res != nil {
		store(rec, res)
		rec.Capture.PauseMS = res.Pause.Milliseconds()
	}
	return err
}

type coreMethod struct{}

func (coreMethod) Name() trace.Method { return capture.DelveCore }

func (coreMethod) Applies(t *capture.Target, rec *trace.Record, captured bool) bool {
	return !captured && wantsCore(t, rec)
}

// Capture writes a core of the stopped process, has it killed at once,
// and reads the core.
func (coreMethod) Capture(ctx context.Context, t *capture.Target, rec *trace.Record) error {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", t.PID))
	if err != nil {
		return err
	}
	core := filepath.Join(t.Dir, "core")
	pause, err := DumpCoreWith(ctx, t.PID, core, Options{StopFirst: true})
	rec.Capture.PauseMS = pause.Milliseconds()
	if t.KillNow != nil {
		t.KillNow()
	}
	if err != nil {
		return err
	}
	res, err := ReadCore(core, exe, Options{})
	if res != nil {
		store(rec, res)
	}
	if fi, serr := os.Stat(core); serr == nil {
		rec.Artifacts = append(rec.Artifacts, trace.Artifact{Kind: trace.KindCore, Path: core, Bytes: fi.Size()})
	}
	return err
}

func store(rec *trace.Record, res *Result) {
	capture.Store(rec, res.Goroutines)
	rec.Threads = res.Threads
}

// coreFileReader reads the goroutines of the core file a crash left, when
// its fatal output gave none (a non-Go crash output, or none at all).
type coreFileReader struct{}

func (coreFileReader) Name() trace.Method { return capture.CoreFile }

func (coreFileReader) Applies(r *capture.Remains, rec *trace.Record, found bool) bool {
	return !found && r.Core != "" && r.Exe != ""
}

func (coreFileReader) Read(r *capture.Remains, rec *trace.Record) {
	t0 := time.Now()
	res, err := ReadCore(r.Core, r.Exe, Options{Budget: time.Minute})
	a := trace.Attempt{Method: capture.CoreFile, DurationMS: time.Since(t0).Milliseconds()}
	if res != nil && len(res.Goroutines) > 0 {
		store(rec, res)
	}
	if err != nil {
		a.Error = err.Error()
	}
	if rec.Capture == nil {
		rec.Capture = &trace.Capture{Method: capture.None}
	}
	rec.Capture.Attempts = append(rec.Capture.Attempts, a)
	if a.Error == "" && len(rec.Goroutines) > 0 {
		rec.Capture.Method, rec.Capture.Error = capture.CoreFile, ""
	}
}

type checker struct{}

func (checker) Check(exe string) error {
	_, err := Preload(exe, nil)
	return err
}

func (checker) Uncapturable(err error) bool {
	return errors.Is(err, ErrNoDebugInfo) || errors.Is(err, ErrGoVersion)
}
