package journal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A Writer that moves on to a new segment first seals the current one by
// clearing its owner-write permission; other Writers notice the roll through
// fstat of their open segment.
const (
	sealedMode = 0o400
	sealBit    = 0o200
)

// Defaults applied by Open to zero Options fields.
const (
	DefaultSegmentBytes = 4 << 20
	DefaultMaxBytes     = 64 << 20
	DefaultMaxAge       = 30 * 24 * time.Hour
)

// Options configure a Writer. The zero value gives the defaults.
type Options struct {
	// SegmentBytes starts a new segment file once the current one would grow
	// past this size. <=0 means DefaultSegmentBytes.
	SegmentBytes int64
	// MaxBytes is the retention budget for the total size of all segments.
	// 0 means DefaultMaxBytes; <0 means unlimited.
	MaxBytes int64
	// MaxAge drops whole segments whose newest record is older than this.
	// 0 means DefaultMaxAge; <0 means unlimited.
	MaxAge time.Duration
	// NoSync skips the fdatasync after each append. A crash of the process
	// loses nothing; a power cut may lose the newest records.
	NoSync bool
	// Now is the clock for record timestamps and age retention; nil means
	// time.Now.
	Now func() time.Time
	// OnDamage, when set, is called for every damaged span the Writer finds
	// in the newest segment (on Open, and when another process left a torn
	// tail), before the Writer repairs it. It runs with the journal locked:
	// it must not block and must not call the Writer.
	OnDamage func(Damage)
	// OnRepair, when set, is called after OnDamage for damage the Writer
	// repaired, with what it did: the tail it cut, the sequence numbers
	// it will not hand out again. Same rules as OnDamage.
	OnRepair func(d Damage, repair string)
}

func (o Options) withDefaults() Options {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Damage describes a part of a segment that could not be read: a torn tail
// (a partial last record after a crash or power cut), a record whose checksum
// does not match, bytes that do not parse as a record, or a bad segment
// header. Readers skip it and report it; they never fail the whole read.
type Damage struct {
	Segment string // file path
	Offset  int64
	Bytes   int64
	Kind    string // DamageTornTail, DamageChecksum, DamageFrame, DamageHeader or DamageTruncated
}

func (d Damage) String() string {
	return fmt.Sprintf("%s: %s at offset %d (%d bytes)", d.Segment, d.Kind, d.Offset, d.Bytes)
}

// segInfo is the Writer's cached view of one segment.
type segInfo struct {
	first     uint64
	size      int64
	lastNs    int64 // time of the newest record (or creation when empty)
	lastKnown bool
}

// Writer appends records to a journal directory. It is safe for concurrent
// use; several Writers, in one process or many, may append to the same
// directory at once.
type Writer struct {
	dir  string
	opts Options

	mu       sync.Mutex // guards everything below
	closed   bool
	lock     *os.File
	cur      *os.File // the newest segment, opened for append
	curFirst uint64
	curSize  int64  // end of the last frame in cur
	next     uint64 // seq of the next record
	segs     []segInfo
	stale    bool // the cached state must be rebuilt from disk
	sealSeen bool // the file system keeps mode bits, so a seal is visible
	needRoll bool // cur must not be appended to (sealed, or its header is damaged)
	buf      []byte
}

// Open opens the journal in dir for appending, creating the directory
// (mode 0700) and its first segment if needed. It repairs a torn tail of the
// newest segment, reporting it through Options.OnDamage first. It returns an
// error wrapping ErrNewerVersion if the newest segment was written by a newer
// major format version.
func Open(dir string, opts Options) (*Writer, error) {
	w := &Writer{dir: dir, opts: opts.withDefaults(), stale: true}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: open: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: open: %w", err)
	}
	w.lock = lock
	err = w.locked(func() error {
		w.removeTemps()
		w.sealSeen = probeSeal(dir)
		return w.syncState()
	})
	if err != nil {
		w.closeFiles()
		return nil, fmt.Errorf("journal: open %s: %w", dir, err)
	}
	return w, nil
}

// Append writes one record and returns its sequence number. Sequence numbers
// start at 1, increase by one per record, are never reused, and are unique
// across all Writers of the directory. Unless Options.NoSync is set, the
// record is on stable storage when Append returns.
//
// Retention runs after the record is written. If it fails, Append returns
// the record's (valid, non-zero) seq together with the error; a zero seq
// means the record was not stored.
func (w *Writer) Append(data []byte) (uint64, error) {
	if len(data) > MaxRecordBytes {
		return 0, fmt.Errorf("journal: append: %d bytes (max %d): %w", len(data), MaxRecordBytes, ErrTooLarge)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, fmt.Errorf("journal: append: %w", ErrClosed)
	}
	var seq uint64
	var retErr error
	err := w.locked(func() error {
		if err := w.syncState(); err != nil {
			w.stale = true
			return err
		}
		frameLen := int64(frameOverhead + len(data))
		if w.needRoll || (w.curSize+frameLen > w.opts.SegmentBytes && w.next > w.curFirst) {
			if err := w.roll(); err != nil {
				w.stale = true
				return err
			}
		}
		now := w.opts.Now()
		w.buf = appendFrame(w.buf[:0], w.next, now.UnixNano(), data)
		if _, err := w.cur.Write(w.buf); err != nil {
			// Take back whatever part of the frame reached the file.
			_ = w.cur.Truncate(w.curSize)
			w.stale = true
			return err
		}
		if !w.opts.NoSync {
			if err := fdatasync(w.cur); err != nil {
				w.stale = true
				return err
			}
		}
		seq = w.next
		// Best effort: without the mark, only damage can make a number
		// be handed out again.
		_ = writeMark(w.lock, seq)
		w.next++
		w.curSize += frameLen
		last := &w.segs[len(w.segs)-1]
		last.size, last.lastNs, last.lastKnown = w.curSize, now.UnixNano(), true
		retErr = w.retain(now)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("journal: append: %w", err)
	}
	if retErr != nil {
		return seq, fmt.Errorf("journal: retention: %w", retErr)
	}
	return seq, nil
}

// Close releases the Writer's files. It is idempotent.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.closeFiles(); err != nil {
		return fmt.Errorf("journal: close: %w", err)
	}
	return nil
}

func (w *Writer) closeFiles() error {
	var errs []error
	if w.cur != nil {
		errs = append(errs, w.cur.Close())
		w.cur = nil
	}
	if w.lock != nil {
		errs = append(errs, w.lock.Close())
		w.lock = nil
	}
	return errors.Join(errs...)
}

// locked runs fn holding the directory's exclusive lock.
func (w *Writer) locked(fn func() error) error {
	if err := flock(w.lock, unix.LOCK_EX); err != nil {
		return err
	}
	err := fn()
	if uerr := flock(w.lock, unix.LOCK_UN); uerr != nil && err == nil {
		err = uerr
	}
	return err
}

func (w *Writer) path(first uint64) string { return filepath.Join(w.dir, segName(first)) }

func (w *Writer) damage(d Damage) {
	if w.opts.OnDamage != nil {
		w.opts.OnDamage(d)
	}
}

func (w *Writer) repaired(d Damage, repair string) {
	w.damage(d)
	if w.opts.OnRepair != nil {
		w.opts.OnRepair(d, repair)
	}
}

// removeTemps deletes segment files a crash left half-created.
func (w *Writer) removeTemps() {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, tempPrefix) {
			_ = os.Remove(filepath.Join(w.dir, n))
		}
	}
}

// syncState makes the cached state match the directory. Called with the
// directory locked. When the current segment has neither grown nor been
// sealed since this Writer last appended, no other Writer has appended
// either, and this costs one fstat.
//
// On a file system that ignores mode bits, a roll by another Writer is
// detected by the existence of the segment this Writer would create next.
func (w *Writer) syncState() error {
	if !w.stale && w.cur != nil {
		var st unix.Stat_t
		if err := unix.Fstat(int(w.cur.Fd()), &st); err == nil &&
			st.Size == w.curSize && st.Nlink > 0 && st.Mode&sealBit != 0 {
			if w.sealSeen || w.next == w.curFirst {
				return nil
			}
			if _, err := os.Lstat(w.path(w.next)); errors.Is(err, fs.ErrNotExist) {
				return nil
			}
		}
	}
	return w.rescan()
}

// probeSeal reports whether clearing a file's owner-write bit in dir shows
// in fstat, as sealing relies on.
func probeSeal(dir string) bool {
	f, err := os.CreateTemp(dir, tempPrefix+"probe-*")
	if err != nil {
		return false
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var st unix.Stat_t
	return f.Chmod(sealedMode) == nil && unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&sealBit == 0
}

// rescan rebuilds the cached state from the directory and repairs the tail
// of the newest segment.
func (w *Writer) rescan() error {
	firsts, err := listSegments(w.dir)
	if err != nil {
		return err
	}
	if len(firsts) == 0 {
		first := max(w.next, 1)
		if err := w.createSegment(first, false); err != nil {
			return err
		}
		firsts = []uint64{first}
	}
	newest := firsts[len(firsts)-1]
	path := w.path(newest)

	var (
		f         *os.File
		sc        *scanner
		created   int64
		badHeader bool
		sealed    bool
	)
	if w.cur != nil && !w.stale && w.curFirst == newest {
		fi, err := w.cur.Stat()
		if err == nil && links(fi) > 0 && fi.Size() >= w.curSize {
			f = w.cur
			sealed = fi.Mode().Perm()&sealBit == 0
			sc = newScanner(f, fi.Size(), w.curSize, newest)
			sc.last = w.next - 1
			sc.lastNs = w.segs[len(w.segs)-1].lastNs
		}
	}
	if f == nil {
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		// A sealed newest segment means a Writer died between sealing it
		// and creating the next one: read it, then roll.
		sealed = fi.Mode().Perm()&sealBit == 0
		flags := os.O_RDWR | os.O_APPEND
		if sealed {
			flags = os.O_RDONLY
		}
		f, err = os.OpenFile(path, flags, 0)
		if err != nil {
			return err
		}
		fi, err = f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		hb := make([]byte, min(fi.Size(), maxHeaderSize))
		if _, err := f.ReadAt(hb, 0); err != nil && !errors.Is(err, io.EOF) {
			f.Close()
			return err
		}
		h, err := decodeHeader(hb)
		if errors.Is(err, ErrNewerVersion) {
			f.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
		start := h.size
		created = h.created
		if err != nil || h.first != newest {
			badHeader = true
			start = headerSize
			created = fi.ModTime().UnixNano()
			w.damage(Damage{Segment: path, Offset: 0, Bytes: min(fi.Size(), headerSize), Kind: DamageHeader})
		}
		sc = newScanner(f, fi.Size(), start, newest)
	}

	end, next, err := w.repairTail(path, f, sc, sealed)
	if err != nil {
		if f != w.cur {
			f.Close()
		}
		return err
	}
	if f != w.cur && w.cur != nil {
		w.cur.Close()
	}
	if mark := readMark(w.lock); mark >= next {
		// Records up to mark were handed out and are gone (a cut tail, a
		// truncated file): their numbers are not handed out again, and
		// the next record starts a segment of its own, so that frames
		// stay consecutive within a segment.
		w.repaired(Damage{Segment: path, Offset: end, Kind: DamageTruncated},
			fmt.Sprintf("records %d to %d are lost; the next record is %d, in a new segment", next, mark, mark+1))
		next = mark + 1
		sealed = true
	}
	w.cur, w.curFirst, w.curSize, w.next = f, newest, end, next
	lastNs := sc.lastNs
	if lastNs == 0 {
		lastNs = created
	}
	w.needRoll = sealed || badHeader
	if w.needRoll && next == newest {
		// Nothing readable in it: replace it with a clean segment.
		if err := w.createSegment(newest, true); err != nil {
			return err
		}
		if err := w.reopenCur(); err != nil {
			return err
		}
		w.needRoll = false
	}

	old := w.segs
	w.segs = w.segs[:0:0]
	for _, first := range firsts[:len(firsts)-1] {
		fi, err := os.Stat(w.path(first))
		if err != nil {
			continue // removed by another process's retention
		}
		si := segInfo{first: first, size: fi.Size()}
		for i, o := range old {
			if o.first == first && i < len(old)-1 && o.lastKnown {
				si.lastNs, si.lastKnown = o.lastNs, true
			}
		}
		w.segs = append(w.segs, si)
	}
	w.segs = append(w.segs, segInfo{first: newest, size: w.curSize, lastNs: lastNs, lastKnown: true})
	w.stale = false
	return nil
}

// repairTail scans the rest of the newest segment, reports damage, and
// truncates a tail that holds no complete frame (unless the segment is
// sealed: then nothing will follow the tail). It returns the end of the data
// to keep and the next sequence number.
func (w *Writer) repairTail(path string, f *os.File, sc *scanner, sealed bool) (end int64, next uint64, err error) {
	for {
		st, err := sc.next()
		if err != nil {
			return 0, 0, err
		}
		switch st.kind {
		case stepFrame:
			continue
		case stepDamage:
			w.damage(Damage{Segment: path, Offset: st.dmgOff, Bytes: st.dmgLen, Kind: st.dmgKind})
			continue
		case stepEnd:
			return min(sc.off, sc.size), sc.last + 1, nil
		}
		// stepTail: keep a complete frame that only fails its checksum, so
		// its sequence number is not handed out again; cut everything else.
		keep, next := st.dmgOff, sc.last+1
		if st.first == vBadCRC {
			keep, next = st.firstF.end, st.firstF.seq+1
		}
		d := Damage{Segment: path, Offset: st.dmgOff, Bytes: st.dmgLen, Kind: st.dmgKind}
		if sealed {
			w.damage(d)
			return sc.size, next, nil
		}
		w.repaired(d, fmt.Sprintf("cut to %d bytes", keep))
		if err := f.Truncate(keep); err != nil {
			return 0, 0, err
		}
		if !w.opts.NoSync {
			if err := fdatasync(f); err != nil {
				return 0, 0, err
			}
		}
		return keep, next, nil
	}
}

// roll seals the current segment and starts a new one whose first record
// will be w.next. Sealing comes first, so other Writers never append to a
// segment that is no longer the newest.
func (w *Writer) roll() error {
	if err := w.cur.Chmod(sealedMode); err != nil {
		return err
	}
	if err := w.createSegment(w.next, false); err != nil {
		return err
	}
	if err := w.reopenCur(); err != nil {
		return err
	}
	w.needRoll = false
	w.segs = append(w.segs, segInfo{first: w.next, size: w.curSize, lastNs: w.opts.Now().UnixNano(), lastKnown: true})
	return nil
}

// reopenCur opens the segment named for w.next as the current one.
func (w *Writer) reopenCur() error {
	f, err := os.OpenFile(w.path(w.next), os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if w.cur != nil {
		w.cur.Close()
	}
	w.cur, w.curFirst, w.curSize = f, w.next, headerSize
	return nil
}

// createSegment atomically writes a new segment holding only a header: it
// is written to a temporary file that is then renamed into place, so a
// segment never lacks its header. With NoSync nothing is fsynced, which
// keeps a roll cheap; a power cut can then lose the new segment, like the
// records after it.
func (w *Writer) createSegment(first uint64, replace bool) (err error) {
	path := w.path(first)
	if !replace {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("create segment %s: %w", path, fs.ErrExist)
		}
	}
	tmp, err := os.CreateTemp(w.dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// An explicit mode: the umask must not make a new segment look sealed.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if _, err := tmp.Write(encodeHeader(first, w.opts.Now().UnixNano())); err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if !w.opts.NoSync {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("create segment: %w", err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if w.opts.NoSync {
		return nil
	}
	return syncDir(w.dir)
}

// listSegments returns the first sequence numbers of the segments in dir,
// in order.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var firsts []uint64
	for _, e := range ents { // ReadDir sorts by name, which is seq order
		if first, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			firsts = append(firsts, first)
		}
	}
	return firsts, nil
}

func links(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
