package trace

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultLogLines is how many lines of the log tail WriteText prints unless
// TextOptions.AllLog is set.
const DefaultLogLines = 20

// maxListedIDs is how many goroutine ids a bucket lists before "...".
const maxListedIDs = 10

// TextOptions tunes WriteText.
type TextOptions struct {
	// AllLog prints the whole log tail instead of its last DefaultLogLines
	// lines.
	AllLog bool
	// Location is the time zone for times; nil means UTC.
	Location *time.Location
}

// WriteText writes the human view of rec: a header (id, service, time,
// reason, exit, uptime, stall, capture, resources, fingerprint), the culprit
// goroutine with its frames, the other goroutines grouped into buckets of
// identical stacks with counts, the threads, and the log tail. It returns
// the first write error.
func WriteText(w io.Writer, rec *Record, opts TextOptions) error {
	bw := bufio.NewWriter(w)
	tw := &textWriter{w: bw}
	gs := goroutinesOf(rec)
	tw.header(rec, culpritIn(gs), opts)
	tw.goroutines(gs)
	tw.threads(rec)
	tw.logTail(rec, opts)
	if tw.err != nil {
		return fmt.Errorf("trace: write text: %w", tw.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("trace: write text: %w", err)
	}
	return nil
}

type textWriter struct {
	w   *bufio.Writer
	err error
}

func (t *textWriter) printf(format string, args ...any) {
	if t.err != nil {
		return
	}
	_, t.err = fmt.Fprintf(t.w, format, args...)
}

func (t *textWriter) field(name, value string) {
	t.printf("  %-12s %s\n", name+":", value)
}

func (t *textWriter) header(rec *Record, culprit *Goroutine, opts TextOptions) {
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	t.printf("incident %s: %s of %s\n", orDash(rec.ID), rec.Reason, orDash(rec.Service))
	t.field("time", rec.Time.In(loc).Format(time.RFC3339Nano))
	t.field("pid", fmt.Sprintf("%d (start %d, up %s)", rec.PID, rec.StartCount, formatMS(rec.UptimeMS)))
	if len(rec.Command) > 0 {
		t.field("command", strings.Join(rec.Command, " "))
	}
	if rec.Exit != nil {
		t.field("exit", rec.Exit.String())
	}
	if rec.Action != "" {
		t.field("action", string(rec.Action))
	}
	if h := headline(rec.CrashOutput); h != "" {
		t.field("headline", h)
	}
	if g := culprit; g != nil {
		if f, ok := CulpritFrame(g); ok {
			t.field("culprit", fmt.Sprintf("goroutine %d in %s at %s:%d", g.ID, f.Function, f.File, f.Line))
		}
	}
	if s := rec.Stall; s != nil {
		v := string(s.Stage) + " " + string(s.Source)
		if s.Name != "" && s.Failures > 0 {
			// A probe of the supervisor's.
			v += fmt.Sprintf(" %s: %d failures in a row, no pass for %s", s.Name, s.Failures, formatMS(s.AgeMS))
			if s.Detail != "" {
				v += " (last: " + s.Detail + ")"
			}
			t.field("stall", v)
		} else if s.Name != "" {
			// Reported by the child of its own unit of work.
			v += fmt.Sprintf(" %s: running for %s, deadline %s", s.Name, formatMS(s.AgeMS), formatMS(s.TimeoutMS))
			if s.Detail != "" {
				v += " (" + s.Detail + ")"
			}
			if s.PID != 0 {
				v += fmt.Sprintf(", captured pid %d", s.PID)
			}
			if s.Dropped != 0 {
				v += fmt.Sprintf(", %d reports dropped before", s.Dropped)
			}
			t.field("stall", v)
		} else if s.Heart != "" {
			v += " " + s.Heart
			if s.Slot != 0 {
				v += fmt.Sprintf(" (slot %d)", s.Slot)
			}
		}
		if s.Name == "" {
			v += fmt.Sprintf(": no beat for %s, timeout %s", formatMS(s.AgeMS), formatMS(s.TimeoutMS))
			if s.ThreadID != 0 {
				v += fmt.Sprintf(", last beat from thread %d", s.ThreadID)
			}
			t.field("stall", v)
		}
	}
	if c := rec.Capture; c != nil {
		v := fmt.Sprintf("%s in %s", c.Method, formatMS(c.DurationMS))
		if c.PauseMS != 0 {
			v += fmt.Sprintf(", child paused %s", formatMS(c.PauseMS))
		}
		if c.Error != "" {
			v += ": " + c.Error
		}
		t.field("capture", v)
		for _, a := range c.Attempts {
			av := fmt.Sprintf("%s in %s", a.Method, formatMS(a.DurationMS))
			if a.Error != "" {
				av += ": " + a.Error
			}
			t.field("  attempt", av)
		}
	}
	if r := rec.Resources; r != nil {
		v := fmt.Sprintf("rss %s, cpu user %s system %s, %d threads, %d fds, %.1f%% cpu",
			formatBytes(r.RSSBytes), formatMS(int64(r.UserMS)), formatMS(int64(r.SystemMS)), r.Threads, r.OpenFDs, r.CPUPct)
		if r.Goroutine != 0 {
			v += fmt.Sprintf(", %d goroutines", r.Goroutine)
		}
		if r.ReadBytes != 0 || r.WriteBytes != 0 {
			v += fmt.Sprintf(", i/o read %s written %s", formatBytes(r.ReadBytes), formatBytes(r.WriteBytes))
		}
		if r.Children != 0 {
			v += fmt.Sprintf(", %d children", r.Children)
		}
		if r.Starved {
			v += ", starved (runnable but not running)"
		}
		t.field("resources", v)
	}
	if rec.Fingerprint != "" {
		t.field("fingerprint", rec.Fingerprint)
	}
	for _, a := range rec.Artifacts {
		t.field("artifact", fmt.Sprintf("%s %s (%s)", a.Kind, a.Path, formatBytes(uint64(max(a.Bytes, 0)))))
	}
}

func (t *textWriter) goroutines(gs []Goroutine) {
	if len(gs) == 0 {
		return
	}
	others := gs
	if g := culpritIn(gs); g != nil {
		t.printf("\nculprit goroutine %d [%s]:\n", g.ID, goroutineState(g.State, g.WaitReason, g.WaitMS, g.WaitMS))
		if len(g.Labels) > 0 {
			t.printf("  labels: %s\n", formatLabels(g.Labels))
		}
		mark, _ := CulpritFrame(g)
		t.framesMarked(g.Frames, g.CreatedBy, mark)
		others = make([]Goroutine, 0, len(gs)-1)
		for i := range gs {
			if !gs[i].Culprit {
				others = append(others, gs[i])
			}
		}
	}
	if len(others) == 0 {
		return
	}
	buckets := Buckets(others)
	t.printf("\nother goroutines: %d in %d groups of identical stacks\n", len(others), len(buckets))
	for i := range buckets {
		b := &buckets[i]
		t.printf("\n%d goroutine%s [%s]: %s\n", b.Count(), plural(b.Count()),
			goroutineState(b.State, b.WaitReason, b.MinWaitMS, b.MaxWaitMS), formatIDs(b.IDs))
		t.frames(b.Frames, b.CreatedBy)
	}
}

func (t *textWriter) frames(fs []Frame, createdBy *Frame) {
	t.framesMarked(fs, createdBy, Frame{})
}

// framesMarked writes frames, with a "> " before the first one equal to
// mark.
func (t *textWriter) framesMarked(fs []Frame, createdBy *Frame, mark Frame) {
	marked := false
	for _, f := range fs {
		lead := "  "
		if !marked && mark.Function != "" && f == mark {
			lead, marked = "> ", true
		}
		t.printf("%s%s\n      %s:%d\n", lead, f.Function, f.File, f.Line)
	}
	if createdBy != nil {
		t.printf("  created by %s\n      %s:%d\n", createdBy.Function, createdBy.File, createdBy.Line)
	}
}

func (t *textWriter) threads(rec *Record) {
	if len(rec.Threads) == 0 {
		return
	}
	t.printf("\nthreads: %d\n", len(rec.Threads))
	for _, th := range rec.Threads {
		t.printf("  %d", th.ID)
		if th.State != "" {
			t.printf(" %s", th.State)
		}
		if th.CPUMS != 0 {
			t.printf(" cpu %s", formatMS(int64(th.CPUMS)))
		}
		if th.Goroutine != 0 {
			t.printf(" goroutine %d", th.Goroutine)
		}
		if len(th.Frames) > 0 {
			t.printf(" in %s", th.Frames[0].Function)
		}
		if th.Description != "" {
			t.printf(" (%s)", th.Description)
		}
		t.printf("\n")
	}
}

func (t *textWriter) logTail(rec *Record, opts TextOptions) {
	lines := rec.LogTail
	if len(lines) == 0 {
		return
	}
	if !opts.AllLog && len(lines) > DefaultLogLines {
		t.printf("\nlog tail (last %d of %d lines; --all for all):\n", DefaultLogLines, len(lines))
		lines = lines[len(lines)-DefaultLogLines:]
	} else {
		t.printf("\nlog tail (%d line%s):\n", len(lines), plural(len(lines)))
	}
	for _, l := range lines {
		t.printf("  %s\n", l)
	}
}

// goroutineState formats "chan receive, 5m0s" like the runtime's header.
func goroutineState(state, reason string, minMS, maxMS int64) string {
	s := state
	if reason != "" {
		s = reason
	}
	switch {
	case maxMS == 0:
	case minMS == maxMS:
		s += ", " + formatMS(maxMS)
	default:
		s += ", " + formatMS(minMS) + "-" + formatMS(maxMS)
	}
	return s
}

func formatIDs(ids []int64) string {
	var b strings.Builder
	b.WriteString("goroutine")
	if len(ids) > 1 {
		b.WriteString("s")
	}
	for i, id := range ids {
		if i == maxListedIDs {
			fmt.Fprintf(&b, " ... (%d more)", len(ids)-maxListedIDs)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}

func formatLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}

func formatMS(ms int64) string {
	return (time.Duration(ms) * time.Millisecond).String()
}

func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
