package trace

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// FingerprintVersion prefixes every fingerprint, so that a change of the
// algorithm never makes old and new incidents look alike.
const FingerprintVersion = "v2"

// fingerprintFrames is how many of the culprit's frames, after runtime
// frames are dropped, make its stack signature.
const fingerprintFrames = 5

// Fingerprint returns a short stable identifier of the bug behind rec: the
// same bug gives the same fingerprint across restarts, pids, goroutine ids,
// addresses, argument values, wait times and goroutine counts.
//
// Algorithm v2 hashes (SHA-256, first 64 bits, hex) the following parts:
//
//   - the reason (crash, exit, stall);
//   - for a stall, the stall source ("heart", "notify-watchdog", "startup",
//     or the child's: "http", "lua", "module", "probe") and, for a stall
//     the child reported, the name of its unit of work;
//   - when there is a culprit goroutine (see Culprit; for a record with
//     crash output but no goroutines, the one that panicked in that output): its state and wait reason (not the wait time), and the
//     function names of its top 5 frames that are not in the runtime (package
//     runtime, internal/runtime/..., the "panic" frame, internal/ packages of
//     the standard library). File names and line numbers are left out, so an
//     edit elsewhere in a file keeps the fingerprint, as do build paths that
//     differ between machines;
//   - for a crash, the class of its headline: "panic: ...", "fatal error:
//     ...", with every number, hex address and long hex token masked, so
//     "index out of range [5] with length 3" and "[7] with length 9" match;
//   - with no culprit goroutine: for a stall, the heart name; for an exit or
//     a crash, the exit status or signal; and the base name of the
//     executable (Command[0], not its arguments), so that the same exit
//     status or stall of two different programs is not one bug;
//   - a Go program killed by a signal another process sent (Exit.Sent) has
//     a class of its own: the reason, "signal-sent", the signal and the
//     executable's base name, nothing of what happened to run.
//
// The result is "v2:" followed by 16 hex digits (v1 had no executable
// name and no sent-signal class).
func Fingerprint(rec *Record) string {
	parts := []string{string(rec.Reason)}
	if rec.Exit != nil && rec.Exit.Sent {
		// Its own class: killed from outside, whatever ran at the time.
		parts = append(parts, "class=signal-sent", "signal="+rec.Exit.Signal, "exe="+exeName(rec))
		return hashParts(parts)
	}
	if rec.Stall != nil {
		parts = append(parts, "source="+string(rec.Stall.Source))
		if rec.Stall.Name != "" {
			// A reported stall: repeats of the same route, script or
			// module group together, apart from others stuck alike.
			parts = append(parts, "name="+rec.Stall.Name)
		}
	}
	if class := HeadlineClass(headline(rec.CrashOutput)); class != "" {
		parts = append(parts, "headline="+class)
	}
	if g := Culprit(rec); g != nil {
		parts = append(parts, "state="+g.State, "wait="+g.WaitReason)
		n := 0
		for _, f := range g.Frames {
			if isRuntimeFunc(f.Function) {
				continue
			}
			parts = append(parts, "frame="+f.Function)
			if n++; n == fingerprintFrames {
				break
			}
		}
		if n == 0 && len(g.Frames) > 0 {
			// Only runtime frames (a runtime goroutine, a fault in the
			// runtime): use the top one.
			parts = append(parts, "frame="+g.Frames[0].Function)
		}
	} else {
		switch {
		case rec.Stall != nil:
			parts = append(parts, "heart="+rec.Stall.Heart)
		case rec.Exit != nil && rec.Exit.Signal != "":
			parts = append(parts, "signal="+rec.Exit.Signal)
		case rec.Exit != nil && rec.Exit.Code != nil:
			parts = append(parts, "code="+strconv.Itoa(*rec.Exit.Code))
		}
		// Without a stack, the program tells unrelated services apart.
		parts = append(parts, "exe="+exeName(rec))
	}
	return hashParts(parts)
}

func hashParts(parts []string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return FingerprintVersion + ":" + hex.EncodeToString(sum[:8])
}

// exeName is the base name of the program a record's child ran, without
// its arguments or pid.
func exeName(rec *Record) string {
	if len(rec.Command) == 0 {
		return ""
	}
	return filepath.Base(rec.Command[0])
}

// ShortFingerprint returns the first 8 hex digits of a fingerprint, without
// the version, for tables.
func ShortFingerprint(fp string) string {
	_, h, ok := strings.Cut(fp, ":")
	if !ok {
		h = fp
	}
	if len(h) > 8 {
		h = h[:8]
	}
	return h
}

// reVariable matches the variable parts of a headline: hex numbers, hex
// tokens of 4 digits or more (ids, hashes, UUID parts) and decimal numbers.
var reVariable = regexp.MustCompile(`0[xX][0-9a-fA-F]+|\b[0-9a-fA-F]{4,}\b|[0-9]+`)

// maxHeadlineClass bounds the headline class, so a panic with a huge value
// does not make a huge key.
const maxHeadlineClass = 200

// HeadlineClass masks the variable parts of a headline: hex numbers become
// "0x?"; decimal numbers, and hex tokens of 4 digits or more that hold a
// decimal digit (ids, hashes), become "N".
func HeadlineClass(h string) string {
	h = reVariable.ReplaceAllStringFunc(h, func(s string) string {
		switch {
		case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
			return "0x?"
		case strings.ContainsAny(s, "0123456789"):
			return "N"
		}
		return s
	})
	if len(h) > maxHeadlineClass {
		h = h[:maxHeadlineClass]
	}
	return h
}

// isRuntimeFunc reports whether fn belongs to the Go runtime or to the
// standard library's internal packages.
func isRuntimeFunc(fn string) bool {
	return fn == "panic" || strings.HasPrefix(fn, "runtime.") ||
		strings.HasPrefix(fn, "internal/") || strings.HasPrefix(fn, "runtime/internal/")
}

// isStdlibFunc reports whether fn is in the standard library: its import
// path has no dot in the first element and is not package main.
func isStdlibFunc(fn string) bool {
	if fn == "panic" {
		return true
	}
	path := fn
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		path = path[:i]
		if j := strings.IndexByte(path, '/'); j >= 0 {
			path = path[:j]
		}
		return !strings.Contains(path, ".")
	}
	pkg, _, _ := strings.Cut(fn, ".")
	return pkg != "main" && !strings.Contains(pkg, "_test")
}

// Culprit returns the culprit goroutine of rec: the one marked Culprit, or
// nil if there is none. A record with crash output but no goroutines (the
// capture kept the raw text only) has its crash output parsed.
func Culprit(rec *Record) *Goroutine { return culpritIn(goroutinesOf(rec)) }

func culpritIn(gs []Goroutine) *Goroutine {
	for i := range gs {
		if gs[i].Culprit {
			return &gs[i]
		}
	}
	return nil
}

// goroutinesOf returns the goroutines of rec, parsed from its crash output
// when the record has none.
func goroutinesOf(rec *Record) []Goroutine {
	if len(rec.Goroutines) > 0 || rec.CrashOutput == "" {
		return rec.Goroutines
	}
	gs, _, err := ParseCrash([]byte(rec.CrashOutput))
	if err != nil {
		return nil
	}
	return gs
}

// CulpritFrame returns the frame of g that best names the code at fault:
// the first frame in the program's own code (not the standard library), or
// else the first frame outside the runtime, or else the top frame. ok is
// false when g has no frames.
func CulpritFrame(g *Goroutine) (f Frame, ok bool) {
	if g == nil || len(g.Frames) == 0 {
		return Frame{}, false
	}
	for _, f := range g.Frames {
		if !isStdlibFunc(f.Function) {
			return f, true
		}
	}
	for _, f := range g.Frames {
		if !isRuntimeFunc(f.Function) {
			return f, true
		}
	}
	return g.Frames[0], true
}

// Summary returns a one-line description of what rec points at, for
// tables: the culprit function, or the stalled heart, or the headline of
// the crash output; "" when the record has none of these.
func Summary(rec *Record) string {
	if rec.Exit != nil && rec.Exit.Sent {
		return rec.Exit.String()
	}
	if f, ok := CulpritFrame(Culprit(rec)); ok {
		return f.Function
	}
	if rec.Stall != nil {
		if rec.Stall.Heart != "" {
			return "heart " + rec.Stall.Heart
		}
		if rec.Stall.Name != "" {
			return string(rec.Stall.Source) + " " + rec.Stall.Name
		}
		return string(rec.Stall.Source)
	}
	return headline(rec.CrashOutput)
}
