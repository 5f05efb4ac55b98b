package delve

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/go-delve/delve/pkg/goversion"
	"github.com/go-delve/delve/pkg/proc"
	"github.com/go-delve/delve/service/api"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// pageSize is how many goroutines are listed per call, so the budget is
// checked during the listing of a large process too.
const pageSize = 1000

// Goroutine states of the runtime (runtime2.go), without the scan bit.
var stateNames = map[uint64]string{
	0:  "idle",
	1:  "runnable",
	2:  "running",
	3:  "syscall",
	4:  "waiting",
	6:  "dead",
	8:  "copystack",
	9:  "preempted",
	10: "leaked",
	11: "dead",
}

const (
	gScan    = 0x1000
	gRunning = 2
	gSyscall = 3
	gWaiting = 4
	gLeaked  = 10
)

func stateName(status uint64) string {
	if s, ok := stateNames[status&^gScan]; ok {
		return s
	}
	return fmt.Sprintf("status(%d)", status)
}

// reader reads goroutines and threads from a stopped target.
type reader struct {
	tgt      *proc.Target
	opts     *Options
	mono     int64 // the target's CLOCK_MONOTONIC "now", in ns; 0 if unknown
	deadline time.Time
	ver      goversion.GoVersion
}

// over reports whether the budget or the context is exhausted.
func (rd *reader) over(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrBudget, err)
	}
	if !rd.deadline.IsZero() && !rd.opts.now().Before(rd.deadline) {
		return fmt.Errorf("%w (%s)", ErrBudget, rd.opts.Budget)
	}
	return nil
}

func (rd *reader) read(ctx context.Context, res *Result) error {
	return safely(func() error { return rd.readAll(ctx, res) })
}

func (rd *reader) readAll(ctx context.Context, res *Result) error {
	rd.ver = goversion.ParseProducer(rd.tgt.BinInfo().Producer())
	// Threads first, even past the budget: they are few, and they name the
	// goroutines that must be kept when the goroutine list is cut short.
	onThread := map[int64]*proc.G{}
	for _, th := range rd.tgt.ThreadList() {
		t := trace.Thread{ID: th.ThreadID()}
		g, _ := proc.GetG(th)
		if g != nil {
			t.Goroutine = g.ID
			if g.ID != 0 {
				onThread[g.ID] = g
			}
		} else {
			t.Description = "no goroutine"
		}
		if frames, err := proc.ThreadStacktrace(rd.tgt, th, rd.opts.maxFrames()); err == nil {
			t.Frames = convertFrames(frames, rd.opts.maxFrames())
		} else {
			t.Description = "stack unreadable: " + err.Error()
		}
		res.Threads = append(res.Threads, t)
	}

	seen := map[int64]bool{}
	stop := rd.listGoroutines(ctx, res, seen)
	// Goroutines on a thread are kept even past MaxGoroutines or the budget:
	// one of them is usually the culprit, and they are few.
	for _, id := range slices.Sorted(maps.Keys(onThread)) {
		if !seen[id] {
			res.Goroutines = append(res.Goroutines, rd.goroutine(onThread[id]))
		}
	}
	return stop
}

// listGoroutines reads goroutines page by page into res until all are
// read, MaxGoroutines is reached, or the budget runs out (then it returns
// an error wrapping ErrBudget).
func (rd *reader) listGoroutines(ctx context.Context, res *Result, seen map[int64]bool) error {
	limit := rd.opts.MaxGoroutines
	for start := 0; start >= 0; {
		if err := rd.over(ctx); err != nil {
			res.Truncated = true
			return err
		}
		gs, next, err := proc.GoroutinesInfo(rd.tgt, start, pageSize)
		if err != nil {
			return fmt.Errorf("list goroutines: %w", classify(err))
		}
		start = next
		for _, g := range gs {
			if limit > 0 && len(res.Goroutines) >= limit {
				res.Truncated = true
				return nil
			}
			if err := rd.over(ctx); err != nil {
				res.Truncated = true
				return err
			}
			if g.Unreadable != nil {
				res.Unreadable++
				continue
			}
			seen[g.ID] = true
			res.Goroutines = append(res.Goroutines, rd.goroutine(g))
		}
		// Delve caches every goroutine and stack it read; dropping them
		// page by page bounds the memory of a large capture.
		rd.tgt.ClearCaches()
	}
	return nil
}

func (rd *reader) goroutine(g *proc.G) trace.Goroutine {
	status := g.Status &^ gScan
	out := trace.Goroutine{
		ID:     g.ID,
		State:  stateName(g.Status),
		Frames: []trace.Frame{},
	}
	if status == gWaiting || status == gLeaked {
		out.WaitReason = api.WaitReasonString(&rd.ver, g.WaitReason)
	}
	out.WaitMS = waitMS(status, g.WaitSince, rd.mono)
	if g.Thread != nil {
		out.ThreadID = g.Thread.ThreadID()
	}
	if status == gRunning && !g.System(rd.tgt) {
		out.Culprit = true
	}
	if labels := g.Labels(); len(labels) > 0 {
		out.Labels = labels
	}
	if loc := g.Go(); g.GoPC != 0 && loc.Fn != nil {
		out.CreatedBy = &trace.Frame{Function: loc.Fn.Name, File: loc.File, Line: loc.Line}
	}
	if frames, err := proc.GoroutineStacktrace(rd.tgt, g, rd.opts.maxFrames(), 0); err == nil {
		out.Frames = convertFrames(frames, rd.opts.maxFrames())
	} else if loc := g.UserCurrent(); loc.Fn != nil {
		out.Frames = []trace.Frame{{Function: loc.Fn.Name, File: loc.File, Line: loc.Line}}
	}
	return out
}

// waitMS is how long a goroutine of the given status has been blocked,
// from the runtime's g.waitsince and the target's monotonic now, both in ns;
// 0 when unknown.
func waitMS(status uint64, since, now int64) int64 {
	switch status &^ gScan {
	case gWaiting, gSyscall, gLeaked:
	default:
		return 0
	}
	if since <= 0 || now <= since {
		return 0
	}
	return (now - since) / int64(time.Millisecond)
}

func convertFrames(frames []proc.Stackframe, limit int) []trace.Frame {
	out := make([]trace.Frame, 0, min(len(frames), limit))
	for _, fr := range frames {
		if len(out) >= limit {
			break
		}
		if fr.Err != nil {
			break
		}
		f := trace.Frame{Function: "?", File: fr.Call.File, Line: fr.Call.Line}
		if fr.Call.Fn != nil {
			f.Function = fr.Call.Fn.Name
		}
		out = append(out, f)
	}
	return out
}
