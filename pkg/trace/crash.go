package trace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/maruel/panicparse/v2/stack"
)

// maxCrashBytes bounds the crash text ParseCrash reads; the rest is ignored.
// A dump of a million goroutines is far below it.
const maxCrashBytes = 256 << 20

// schedulerStates are goroutine states printed by the Go runtime that are
// not wait reasons. Any other state in a goroutine header is the wait reason
// of a waiting goroutine ("chan receive", "sync.Mutex.Lock", ...).
var schedulerStates = map[string]bool{
	"idle":      true,
	"runnable":  true,
	"running":   true,
	"syscall":   true,
	"waiting":   true,
	"dead":      true,
	"copystack": true,
	"preempted": true,
	"moribund":  true,
}

var (
	reHeadline  = regexp.MustCompile(`^(panic: |fatal error: |SIG[A-Z0-9]+: )`)
	reSignal    = regexp.MustCompile(`^\[signal [^\]]*\]$`)
	reGoroutine = regexp.MustCompile(`^[ \t]*goroutine \d+( gp=\S+ m=\S+( mp=\S+)?)? \[[^\]]+\]:\s*$`)
)

// ParseCrash parses the fatal output of a Go program: an unrecovered panic,
// a fatal error ("concurrent map writes", "all goroutines are asleep"), a
// fatal signal, at any GOTRACEBACK level (single, all, system, crash). Text
// before and between the dumps (log lines, "runtime stack:" sections,
// register dumps) is skipped.
//
// culprit is the index in goroutines of the goroutine that panicked or
// faulted, which has Culprit set: the first one printed (the runtime
// prints it first), skipping the system stacks (goroutine 0) that start a
// dump caused by a signal such as SIGQUIT; for concurrent map access, the
// goroutine caught in the map code. For a deadlock ("all goroutines are
// asleep") or a SIGQUIT dump there is no faulting goroutine: it is the
// first one printed, usually goroutine 1.
//
// It returns an error wrapping ErrNoGoroutines when text holds no goroutine
// dump, and ErrMalformedDump when the dump is too damaged to parse. It never
// panics on malformed input.
func ParseCrash(text []byte) (goroutines []Goroutine, culprit int, err error) {
	if len(text) > maxCrashBytes {
		text = text[:maxCrashBytes]
	}
	parsed, err := scanParallel(text)
	if err != nil {
		return nil, -1, err
	}
	if len(parsed) == 0 {
		return nil, -1, fmt.Errorf("trace: parse crash: %w", ErrNoGoroutines)
	}
	labels := headerLabels(text)
	goroutines = make([]Goroutine, 0, len(parsed))
	seen := make(map[int]bool, len(parsed))
	for _, pg := range parsed {
		// Goroutine 0 is the system stack of a thread: there is one per
		// thread, all kept.
		if pg.ID != 0 && seen[pg.ID] {
			continue
		}
		seen[pg.ID] = true
		g := convertGoroutine(pg)
		if g.Labels == nil {
			g.Labels = labels[g.ID]
		}
		goroutines = append(goroutines, g)
	}
	if _, sent := SentSignal(text); sent {
		// Killed from outside: no goroutine is to blame.
		return goroutines, -1, nil
	}
	culprit = pickCulprit(goroutines, Headline(text))
	goroutines[culprit].Culprit = true
	return goroutines, culprit, nil
}

// parallelMin is the dump size from which ParseCrash splits the work
// across CPUs: panicparse reads about 12 MB/s on one core.
const parallelMin = 256 << 10

// scanParallel parses a large dump in pieces, one per CPU, cut at goroutine
// headers, and concatenates the goroutines in order. Where any piece fails
// it parses the whole text at once, so the result never depends on where
// the cuts fell.
func scanParallel(text []byte) ([]*stack.Goroutine, error) {
	n := runtime.GOMAXPROCS(0)
	if len(text) < parallelMin || n < 2 {
		return scanAll(text)
	}
	var pieces [][]byte
	rest := text
	for k := n; k > 1 && len(rest) > 0; k-- {
		cut := len(rest) / k
		i := bytes.Index(rest[cut:], []byte("\ngoroutine "))
		if i < 0 {
			break
		}
		pieces = append(pieces, rest[:cut+i+1])
		rest = rest[cut+i+1:]
	}
	pieces = append(pieces, rest)
	results := make([][]*stack.Goroutine, len(pieces))
	errs := make([]error, len(pieces))
	var wg sync.WaitGroup
	for i, p := range pieces {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = scanAll(p)
		}()
	}
	wg.Wait()
	var all []*stack.Goroutine
	for i := range pieces {
		if errs[i] != nil {
			return scanAll(text)
		}
		all = append(all, results[i]...)
	}
	return all, nil
}

// scanAll parses every goroutine of text, scanning on past the sections
// (register dumps, "runtime stack:") that interrupt a dump.
func scanAll(text []byte) ([]*stack.Goroutine, error) {
	opts := &stack.Opts{}
	in := io.Reader(bytes.NewReader(text))
	var parsed []*stack.Goroutine
	for {
		snap, suffix, serr := scanSnapshot(in, opts)
		if errors.Is(serr, ErrMalformedDump) {
			return nil, fmt.Errorf("trace: parse crash: %w", serr)
		}
		if snap != nil {
			parsed = append(parsed, snap.Goroutines...)
		}
		if snap == nil || len(suffix) == 0 || (serr != nil && !errors.Is(serr, io.EOF)) {
			if len(parsed) == 0 && serr != nil && !errors.Is(serr, io.EOF) {
				return nil, fmt.Errorf("trace: parse crash: %w", serr)
			}
			return parsed, nil
		}
		// Keep scanning after the line that ended this dump: with
		// GOTRACEBACK=crash or system, runtime sections interrupt it.
		in = io.MultiReader(bytes.NewReader(suffix), in)
	}
}

// scanSnapshot calls panicparse, turning a panic of the parser on
// malformed input into an error wrapping ErrMalformedDump.
func scanSnapshot(in io.Reader, opts *stack.Opts) (snap *stack.Snapshot, suffix []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			snap, suffix, err = nil, nil, fmt.Errorf("%w: %v", ErrMalformedDump, r)
		}
	}()
	return stack.ScanSnapshot(in, io.Discard, opts)
}

func convertGoroutine(pg *stack.Goroutine) Goroutine {
	g := Goroutine{ID: int64(pg.ID), WaitMS: int64(pg.SleepMax) * 60_000}
	state, labels := splitLabels(pg.State)
	g.Labels = labels
	if schedulerStates[state] {
		g.State = state
	} else {
		g.State = "waiting"
		g.WaitReason = state
	}
	g.Frames = make([]Frame, 0, len(pg.Stack.Calls))
	for i := range pg.Stack.Calls {
		g.Frames = append(g.Frames, convertCall(&pg.Stack.Calls[i]))
	}
	if len(pg.CreatedBy.Calls) > 0 {
		f := convertCall(&pg.CreatedBy.Calls[0])
		// "created by main.main in goroutine 1": keep the function only.
		if i := strings.Index(f.Function, " in goroutine "); i >= 0 {
			f.Function = f.Function[:i]
		}
		g.CreatedBy = &f
	}
	return g
}

var reLabelHeader = regexp.MustCompile(`(?m)^goroutine (\d+) [^\n]*labels:(\{[^\n]*\})\]:\s*$`)

// headerLabels finds the pprof labels of every goroutine header that has
// them. The parser drops them from headers that also say "locked to
// thread", so they are read from the text.
func headerLabels(text []byte) map[int64]map[string]string {
	if !bytes.Contains(text, []byte("labels:{")) {
		return nil
	}
	out := map[int64]map[string]string{}
	for _, m := range reLabelHeader.FindAllSubmatch(text, -1) {
		id, err := strconv.ParseInt(string(m[1]), 10, 64)
		if err != nil {
			continue
		}
		var l map[string]string
		if json.Unmarshal(m[2], &l) == nil {
			out[id] = l
		}
	}
	return out
}

// splitLabels separates the pprof labels that a Go 1.26+ runtime prints in
// a goroutine header under GODEBUG=tracebacklabels=1 ("sync.Mutex.Lock
// labels:{"k": "v"}") from the state.
func splitLabels(state string) (string, map[string]string) {
	i := strings.Index(state, "labels:{")
	if i < 0 {
		return state, nil
	}
	var labels map[string]string
	if err := json.Unmarshal([]byte(state[i+len("labels:"):]), &labels); err != nil {
		return state, nil
	}
	return strings.TrimRight(strings.TrimSpace(state[:i]), ","), labels
}

func convertCall(c *stack.Call) Frame {
	return Frame{Function: c.Func.Complete, File: c.RemoteSrcPath, Line: c.Line}
}

// pickCulprit returns the index of the goroutine that caused the crash.
func pickCulprit(gs []Goroutine, headline string) int {
	if strings.Contains(headline, "concurrent map") {
		for i := range gs {
			for _, f := range gs[i].Frames {
				if isMapFatal(f.Function) {
					return i
				}
			}
		}
	}
	// A dump caused by a signal (SIGQUIT, SIGABRT) may start with the
	// system stack of the thread that took it, goroutine 0.
	for i := range gs {
		if gs[i].ID != 0 {
			return i
		}
	}
	return 0
}

func isMapFatal(fn string) bool {
	return fn == "internal/runtime/maps.fatal" || strings.HasPrefix(fn, "runtime.mapassign") ||
		strings.HasPrefix(fn, "runtime.mapaccess") || strings.HasPrefix(fn, "runtime.mapdelete") ||
		strings.HasPrefix(fn, "runtime.mapiter") || strings.HasPrefix(fn, "internal/runtime/maps.")
}

// Headline returns the line of Go fatal output that says what happened:
// "panic: boom", "fatal error: concurrent map writes", "SIGQUIT: quit". A
// "[signal SIGSEGV: ...]" line that follows it is appended after a space. Of
// several candidates before the first goroutine dump (log lines may precede
// the crash), the last one wins. It returns "" when there is none.
func Headline(text []byte) string { return headline(text) }

// maxLineBytes bounds the lines headline looks at; longer ones are skipped.
const maxLineBytes = 64 << 10

func headline[T ~string | ~[]byte](text T) string {
	if len(text) > maxCrashBytes {
		text = text[:maxCrashBytes]
	}
	var head string
	var prevWasHeadline bool
	for len(text) > 0 {
		end := 0
		for end < len(text) && text[end] != '\n' {
			end++
		}
		raw := text[:end]
		if end < len(text) {
			end++
		}
		text = text[end:]
		if len(raw) > maxLineBytes {
			prevWasHeadline = false
			continue
		}
		line := strings.TrimRight(string(raw), "\r")
		switch {
		case reGoroutine.MatchString(line):
			return head
		case reHeadline.MatchString(line):
			head = line
			prevWasHeadline = true
			continue
		case prevWasHeadline && reSignal.MatchString(line):
			head += " " + line
		}
		prevWasHeadline = false
	}
	return head
}
