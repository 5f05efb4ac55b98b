package watchdog

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/capture"
)

// MaxCrashText bounds the fatal output kept from one child's stderr.
const MaxCrashText = 64 << 20

// maxRecordCrashText bounds the crash text stored inside a record; the
// rest of a larger dump is parsed but only kept as an artifact file.
const maxRecordCrashText = 4 << 20

// crashText collects a Go program's fatal output from its stderr: from the
// first line that starts one ("panic: ", "fatal error: ", "SIGQUIT: ", ...)
// to the end of the stream, at most MaxCrashText bytes.
type crashText struct {
	mu   sync.Mutex
	on   bool
	buf  bytes.Buffer
	full bool
}

// line is fed every stderr line (whole or partial).
func (c *crashText) line(text []byte, partial bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		if !startsFatal(text) {
			return
		}
		c.on = true
	}
	if c.buf.Len()+len(text)+1 > MaxCrashText {
		c.full = true
		return
	}
	c.buf.Write(text)
	if !partial {
		c.buf.WriteByte('\n')
	}
}

func (c *crashText) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}

var fatalPrefixes = [][]byte{[]byte("panic: "), []byte("fatal error: "), []byte("fatal: "), []byte("SIG")}

func startsFatal(line []byte) bool {
	for _, p := range fatalPrefixes {
		if bytes.HasPrefix(line, p) {
			if p[0] == 'S' {
				// "SIGQUIT: quit", "SIGABRT: abort", ...
				i := bytes.IndexByte(line, ':')
				return i > 3 && i < 12 && bytes.IndexByte(line[:i], ' ') < 0
			}
			return true
		}
	}
	return false
}

// newCrashFD makes the memfd a linked child hands to debug.SetCrashOutput.
// A memfd, not a pipe: a dying child must never block on a full pipe.
func newCrashFD() (*os.File, error) {
	fd, err := unix.MemfdCreate("mtev-crash-output", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("watchdog: crash output memfd: %w", err)
	}
	return os.NewFile(uintptr(fd), "mtev-crash-output"), nil
}

// readCrashFD returns what the child wrote to its crash-output memfd.
func readCrashFD(f *os.File) []byte {
	if f == nil {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return nil
	}
	b, err := io.ReadAll(io.NewSectionReader(f, 0, min(fi.Size(), MaxCrashText)))
	if err != nil {
		return nil
	}
	return b
}

// isGoCrash reports whether an exit looks like a Go runtime's fatal end:
// status 2 after a panic or fatal error, or death by signal (SIGABRT with
// GOTRACEBACK=crash), with fatal output to go with it.
func isGoCrash(ex trace.Exit, text []byte) bool {
	if len(text) == 0 {
		return false
	}
	return ex.Signal != "" || (ex.Code != nil && *ex.Code == 2)
}

// pending is a record on its way to the journal, with the raw material
// the writer turns into goroutines and a fingerprint off the loop.
type pending struct {
	rec   *trace.Record
	crash []byte // fatal output to parse, if any
	// crashFrom is where crash came from: "crash-output" (the
	// memfd the child's runtime wrote) or "stderr" (its standard error).
	crashFrom string
	core      string // core file the kernel wrote, if any
	exe       string // the child's executable, for reading the core
}

// sameCrash counts incidents per fingerprint within a span.
type sameCrash struct {
	n     int
	span  time.Duration
	times map[string][]time.Time
}

func newSameCrash(n int, span time.Duration) *sameCrash {
	return &sameCrash{n: n, span: span, times: map[string][]time.Time{}}
}

// record adds an occurrence and reports whether the limit is reached.
func (c *sameCrash) record(fp string, t time.Time) bool {
	if c == nil || c.n <= 0 || fp == "" {
		return false
	}
	ts := append(c.times[fp], t)
	if len(ts) > c.n {
		ts = ts[len(ts)-c.n:]
	}
	c.times[fp] = ts
	return len(ts) == c.n && t.Sub(ts[0]) <= c.span
}

// complete reads what a dead child left (its fatal output, its core file)
// through the registered readers and sets the fingerprint. It runs on the
// journal writer, never on the loop: parsing a large dump takes seconds.
func complete(p pending, artifactDir string) {
	rec := p.rec
	r := &capture.Remains{Crash: p.crash, CrashFrom: trace.Method(p.crashFrom), Exe: p.exe, Dir: incidentDir(artifactDir, rec)}
	if r.CrashFrom == "" {
		r.CrashFrom = capture.CrashOutput
	}
	if p.core != "" {
		r.Core = keepCore(p.core, r.Dir, rec)
	}
	capture.ReadRemains(r, rec)
	rec.Fingerprint = trace.Fingerprint(rec)
}

func init() { capture.RegisterReader(10, crashReader{}) }

// crashReader reads the goroutines of a Go child's fatal output and keeps
// the text with the record (the whole of a long one as an artifact).
type crashReader struct{}

func (crashReader) Name() trace.Method { return capture.CrashOutput }

func (crashReader) Applies(r *capture.Remains, rec *trace.Record, found bool) bool {
	return len(r.Crash) > 0
}

func (crashReader) Read(r *capture.Remains, rec *trace.Record) {
	sent := markSent(rec, r.Crash)
	if gs, _, err := trace.ParseCrash(r.Crash); err == nil {
		if sent {
			// Killed from outside: no goroutine is to blame.
			capture.StoreBlameless(rec, gs)
		} else {
			capture.Store(rec, gs)
		}
		if rec.Capture == nil {
			rec.Capture = &trace.Capture{Method: r.CrashFrom}
		}
	} else if rec.Capture == nil {
		rec.Capture = &trace.Capture{Method: r.CrashFrom, Error: err.Error()}
	}
	rec.CrashOutput = string(r.Crash)
	if len(r.Crash) > maxRecordCrashText {
		rec.CrashOutput = string(r.Crash[:maxRecordCrashText]) + "\n[... crash output truncated; full text in artifact]\n"
		if a, err := writeArtifact(r.Dir, "crash-output.txt", r.Crash); err == nil {
			rec.Artifacts = append(rec.Artifacts, a)
		}
	}
}

// markSent marks the exit of a Go child killed by a signal another process
// sent (see trace.SentSignal) and reports whether it was. The runtime
// prints its dump and exits with status 2 (GOTRACEBACK=crash: dies of the
// signal); the signal is recorded either way.
func markSent(rec *trace.Record, crash []byte) bool {
	if rec.Exit == nil {
		return false
	}
	sig, ok := trace.SentSignal(crash)
	if !ok || (rec.Exit.Signal != "" && sig != rec.Exit.Signal) {
		return false
	}
	rec.Exit.Signal, rec.Exit.Sent = sig, true
	return true
}

// keepCore moves the core file a crash left next to the record and lists
// it as an artifact; it returns where the core now is.
func keepCore(core, dir string, rec *trace.Record) string {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return core
	}
	kept := filepath.Join(dir, "core")
	if err := os.Rename(core, kept); err != nil {
		kept = core // another file system: read it where it is
	}
	if fi, err := os.Stat(kept); err == nil {
		rec.Artifacts = append(rec.Artifacts, trace.Artifact{Kind: trace.KindCore, Path: kept, Bytes: fi.Size()})
	}
	return kept
}

// findCore looks for the core file a crashed child left in its working
// directory (core_pattern "core", with or without core_uses_pid), written
// after it started. It returns "" with a reason when there is none.
func findCore(dir string, pid int, started time.Time) (string, string) {
	pattern, _ := os.ReadFile("/proc/sys/kernel/core_pattern")
	if p := strings.TrimSpace(string(pattern)); strings.HasPrefix(p, "|") {
		return "", "core_pattern pipes cores to " + strings.Fields(p[1:])[0]
	}
	if dir == "" {
		dir, _ = os.Getwd()
	}
	for _, name := range []string{fmt.Sprintf("core.%d", pid), "core"} {
		path := filepath.Join(dir, name)
		if fi, err := os.Stat(path); err == nil && !fi.ModTime().Before(started.Add(-time.Second)) {
			return path, ""
		}
	}
	return "", "no core file found in " + dir
}

// writeArtifact stores data in a file of its own in the incident's
// artifact directory dir.
func writeArtifact(dir, name string, data []byte) (trace.Artifact, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return trace.Artifact{}, err
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return trace.Artifact{}, err
	}
	return trace.Artifact{Kind: trace.ArtifactKind(name), Path: path, Bytes: int64(len(data))}, nil
}
