package log

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// FileOptions configures the "file" and "file_synch" outlet types. Zero
// values disable the corresponding rotation or retention rule.
type FileOptions struct {
	// RotateBytes rotates the file before a line would take it past this
	// size.
	RotateBytes int64
	// RotateEvery rotates the file at each multiple of this period since
	// the Unix epoch (aligned boundaries, as libmtev's rotate_seconds).
	RotateEvery time.Duration
	// RetainCount keeps at most this many rotated files.
	RetainCount int
	// RetainBytes keeps rotated files totalling at most this many bytes.
	RetainBytes int64
	// RetainAge removes rotated files whose rotation time is older.
	RetainAge time.Duration
	// Perm is the mode of created files; 0 means 0644.
	Perm fs.FileMode
}

// File is a log file that rotates itself. The current file is always at
// its configured path; a rotated file is renamed to "<path>.<epoch>",
// with ".<n>" appended when that name is taken, where epoch is the Unix
// time of the rotation in seconds. A File is not safe for concurrent use;
// the Graph serializes calls to it.
type File struct {
	path string
	opts FileOptions
	now  func() time.Time

	f    *os.File
	w    *bufio.Writer
	size int64
	next time.Time // next time-based rotation; zero when disabled
}

func openFile(s *Spec, env Env) (Sink, error) {
	return OpenFile(s.Path, s.File, env.Now)
}

// OpenFile opens (creating or appending to) the log file at path. now is
// the clock used for rotation; nil means time.Now. It fails, naming the
// problem, when the directory is missing or unwritable.
func OpenFile(path string, opts FileOptions, now func() time.Time) (*File, error) {
	if path == "" {
		return nil, fmt.Errorf("log: open file: path is empty: %w", ErrInvalid)
	}
	if opts.RotateBytes < 0 || opts.RotateEvery < 0 || opts.RetainCount < 0 || opts.RetainBytes < 0 || opts.RetainAge < 0 {
		return nil, fmt.Errorf("log: open file %s: negative rotation or retention setting: %w", path, ErrInvalid)
	}
	if opts.RotateEvery > 0 && opts.RotateEvery < time.Second {
		return nil, fmt.Errorf("log: open file %s: rotation period %v is under one second: %w", path, opts.RotateEvery, ErrInvalid)
	}
	if opts.Perm == 0 {
		opts.Perm = 0o644
	}
	if now == nil {
		now = time.Now
	}
	f := &File{path: path, opts: opts, now: now}
	if err := f.open(); err != nil {
		return nil, err
	}
	if opts.RotateEvery > 0 {
		f.next = nextBoundary(now(), opts.RotateEvery)
	}
	return f, nil
}

func nextBoundary(t time.Time, every time.Duration) time.Time {
	return t.Truncate(every).Add(every)
}

func (f *File) open() error {
	fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, f.opts.Perm)
	if err != nil {
		return fmt.Errorf("log: open file: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return fmt.Errorf("log: open file: %w", err)
	}
	if !st.Mode().IsRegular() {
		fh.Close()
		return fmt.Errorf("log: open file %s: not a regular file: %w", f.path, ErrInvalid)
	}
	f.f = fh
	f.size = st.Size()
	if f.w == nil {
		f.w = bufio.NewWriterSize(fh, 64<<10)
	} else {
		f.w.Reset(fh)
	}
	return nil
}

// Path returns the path of the current file.
func (f *File) Path() string { return f.path }

// WriteLine writes line, rotating first when a rule says so.
func (f *File) WriteLine(line []byte) error {
	if f.f == nil {
		// An earlier rotation could not reopen the file: try again.
		if err := f.open(); err != nil {
			return err
		}
	}
	var rerr error
	due := f.opts.RotateBytes > 0 && f.size+int64(len(line)) > f.opts.RotateBytes
	if !f.next.IsZero() {
		if now := f.now(); !now.Before(f.next) {
			due = true
			if f.size == 0 {
				// Nothing was written in the period that ended.
				f.next = nextBoundary(now, f.opts.RotateEvery)
			}
		}
	}
	if f.size > 0 {
		if due {
			rerr = f.Rotate()
			if rerr != nil && f.f == nil {
				return rerr
			}
		}
	}
	n, err := f.w.Write(line)
	f.size += int64(n)
	if err != nil {
		return fmt.Errorf("log: write %s: %w", f.path, err)
	}
	// A failed rotation or retention is reported, though the line was
	// written to the current file.
	return rerr
}

// Flush writes buffered lines to the file.
func (f *File) Flush() error {
	if f.f == nil {
		return nil
	}
	if err := f.w.Flush(); err != nil {
		return fmt.Errorf("log: flush %s: %w", f.path, err)
	}
	return nil
}

// Rotate renames the current file to its rotated name, opens a new one,
// and applies the retention rules. If the rename fails the current file
// stays open and in use; if the file is no longer at its path, a new one
// is created there.
func (f *File) Rotate() error {
	if err := f.Flush(); err != nil {
		return err
	}
	now := f.now()
	if f.opts.RotateEvery > 0 {
		f.next = nextBoundary(now, f.opts.RotateEvery)
	}
	target, err := f.rotatedName(now)
	if err != nil {
		return err
	}
	if err := os.Rename(f.path, target); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("log: rotate %s: %w", f.path, err)
		}
		// The file was moved or removed behind our back: start a new one
		// at the configured path.
	}
	f.f.Close()
	f.f = nil
	if err := f.open(); err != nil {
		return err
	}
	return f.cull(now)
}

func (f *File) rotatedName(now time.Time) (string, error) {
	base := f.path + "." + strconv.FormatInt(now.Unix(), 10)
	name := base
	for n := 1; ; n++ {
		_, err := os.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			return name, nil
		}
		if err != nil {
			return "", fmt.Errorf("log: rotate %s: %w", f.path, err)
		}
		name = base + "." + strconv.Itoa(n)
	}
}

// Reopen closes and reopens the file at its path, for use after an
// external tool has renamed it.
func (f *File) Reopen() error {
	if err := f.Flush(); err != nil {
		return err
	}
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
	return f.open()
}

// Close flushes and closes the file.
func (f *File) Close() error {
	if f.f == nil {
		return nil
	}
	ferr := f.w.Flush()
	cerr := f.f.Close()
	f.f = nil
	if err := errors.Join(ferr, cerr); err != nil {
		return fmt.Errorf("log: close %s: %w", f.path, err)
	}
	return nil
}

// Rotated is a rotated log file.
type Rotated struct {
	Path  string
	Epoch int64 // rotation time, Unix seconds
	Seq   int   // the ".<n>" suffix, 0 when absent
	Size  int64
}

// RotatedFiles lists the rotated files of the log at path, oldest first.
func RotatedFiles(path string) ([]Rotated, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("log: list rotated %s: %w", path, err)
	}
	var out []Rotated
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		epochStr, seqStr, hasSeq := strings.Cut(rest, ".")
		epoch, err := strconv.ParseInt(epochStr, 10, 64)
		if err != nil || epochStr[0] == '+' || epochStr[0] == '-' {
			continue
		}
		seq := 0
		if hasSeq {
			if seq, err = strconv.Atoi(seqStr); err != nil || seq <= 0 || seqStr[0] == '+' {
				continue
			}
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, Rotated{Path: filepath.Join(dir, e.Name()), Epoch: epoch, Seq: seq, Size: info.Size()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Epoch != out[j].Epoch {
			return out[i].Epoch < out[j].Epoch
		}
		return out[i].Seq < out[j].Seq
	})
	return out, nil
}

// cull removes the oldest rotated files until the retention rules hold.
func (f *File) cull(now time.Time) error {
	o := f.opts
	if o.RetainCount == 0 && o.RetainBytes == 0 && o.RetainAge == 0 {
		return nil
	}
	files, err := RotatedFiles(f.path)
	if err != nil {
		return err
	}
	var total int64
	for _, r := range files {
		total += r.Size
	}
	var errs []error
	for i, r := range files {
		keep := len(files) - i
		over := (o.RetainCount > 0 && keep > o.RetainCount) ||
			(o.RetainBytes > 0 && total > o.RetainBytes) ||
			(o.RetainAge > 0 && now.Sub(time.Unix(r.Epoch, 0)) > o.RetainAge)
		if !over {
			break
		}
		if err := os.Remove(r.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		total -= r.Size
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("log: retention %s: %w", f.path, err)
	}
	return nil
}
