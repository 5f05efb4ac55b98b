package watchdog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/capture"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/incident"
)

// The supervisor's own methods of the capture chain; package trace/delve
// adds the capture from outside between them.
func init() {
	capture.Register(10, cooperativeMethod{})
	capture.Register(30, gliderMethod{})
}

// incidentDir is the one name of an incident's artifact directory.
func incidentDir(artifactDir string, rec *trace.Record) string { return incident.Dir(artifactDir, rec) }

// runChain fills rec with the best account of the stalled process it can
// get: the methods of capture.Chain in order, cheapest first. Every
// attempt is listed in rec.Capture; the first that succeeds names the
// method. It runs on the incident's capture goroutine and touches no
// supervisor state.
func runChain(t *capture.Target, rec *trace.Record) {
	// Resource use over a short interval, per thread too: it tells a
	// starved process (runnable, waiting for a CPU) from a deadlocked one.
	smp := trace.NewSampler(t.PID, trace.SamplerOptions{})
	var sampled []trace.Thread
	if _, _, err := smp.Sample(); err == nil {
		time.Sleep(trace.ResourceInterval)
		if res, threads, err := smp.Sample(); err == nil {
			rec.Resources, sampled = res, threads
		}
	}
	defer func() { rec.Threads = mergeThreads(rec.Threads, sampled) }()
	capt := &trace.Capture{Method: capture.None}
	rec.Capture = capt
	t0 := time.Now()
	if err := os.MkdirAll(t.Dir, 0o700); err != nil {
		capt.Error = err.Error()
		return
	}
	for _, m := range capture.Chain() {
		if !m.Applies(t, rec, capt.Method != capture.None) {
			continue
		}
		t1 := time.Now()
		err := m.Capture(context.Background(), t, rec)
		a := trace.Attempt{Method: m.Name(), DurationMS: ms(time.Since(t1))}
		if err != nil {
			a.Error = err.Error()
		} else if capt.Method == capture.None {
			capt.Method = a.Method
		}
		capt.Attempts = append(capt.Attempts, a)
	}
	capt.DurationMS = ms(time.Since(t0))
	for _, a := range capt.Attempts {
		if a.Error != "" {
			msg := a.Error
			if !strings.HasPrefix(msg, string(a.Method)+": ") {
				msg = string(a.Method) + ": " + msg
			}
			capt.Error = strings.TrimPrefix(capt.Error+"; ", "; ") + msg
		}
	}
	if capt.Method == capture.None && capt.Error == "" {
		capt.Error = "no capture method available for this child"
	}
	if capt.Method != capture.None {
		capt.Error = ""
	}
}

// mergeThreads adds the sampled state and CPU use to the threads a
// capture read (with their stacks), or returns the sampled threads when
// the capture read none.
func mergeThreads(captured, sampled []trace.Thread) []trace.Thread {
	if len(captured) == 0 {
		return sampled
	}
	byID := make(map[int]trace.Thread, len(sampled))
	for _, t := range sampled {
		byID[t.ID] = t
	}
	for i := range captured {
		if t, ok := byID[captured[i].ID]; ok {
			captured[i].CPUMS = t.CPUMS
			if captured[i].State == "" {
				captured[i].State = t.State
			}
		}
	}
	return captured
}

// cooperativeMethod asks a linked child for its own dump.
type cooperativeMethod struct{}

func (cooperativeMethod) Name() trace.Method { return capture.Cooperative }

func (cooperativeMethod) Applies(t *capture.Target, _ *trace.Record, _ bool) bool {
	return t.Linked && t.Dump != nil
}

func (cooperativeMethod) Capture(ctx context.Context, t *capture.Target, rec *trace.Record) error {
	ctx, cancel := context.WithTimeout(ctx, t.DumpBudget+time.Second)
	defer cancel()
	res, err := t.Dump.Request(ctx, t.Dir, t.DumpBudget)
	if err != nil {
		return err
	}
	for _, f := range res.Files {
		if f.Size > 0 {
			rec.Artifacts = append(rec.Artifacts, trace.Artifact{Kind: trace.ArtifactKind(f.Kind), Path: f.Path, Bytes: f.Size})
		}
		if f.Kind != dump.KindGoroutines || f.Size <= 0 {
			continue
		}
		text, rerr := os.ReadFile(f.Path)
		if rerr != nil {
			err = rerr
			continue
		}
		gs, _, perr := trace.ParseCrash(text)
		if perr != nil {
			err = perr
			continue
		}
		capture.Store(rec, gs)
	}
	if err == nil && len(rec.Goroutines) == 0 {
		err = errors.New("the child wrote no goroutine profile")
	}
	return err
}

// gliderMethod runs the external tracer on the stalled process, whatever
// the earlier methods got.
type gliderMethod struct{}

func (gliderMethod) Name() trace.Method { return capture.Glider }

func (gliderMethod) Applies(t *capture.Target, _ *trace.Record, _ bool) bool { return t.Glider != "" }

func (gliderMethod) Capture(ctx context.Context, t *capture.Target, rec *trace.Record) error {
	what := string(rec.Stall.Source)
	if rec.Stall.Heart != "" {
		what = rec.Stall.Heart
	} else if rec.Stall.Name != "" {
		what += "/" + rec.Stall.Name
	}
	art, err := trace.RunGlider(ctx, t.Glider, t.PID, "watchdog/"+what, filepath.Join(t.Dir, "glider.txt"), t.GliderBudget)
	if art.Path != "" {
		rec.Artifacts = append(rec.Artifacts, art)
	}
	return err
}
