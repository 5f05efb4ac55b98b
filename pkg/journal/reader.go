package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Entry is one record read back from the journal.
type Entry struct {
	Seq  uint64
	Time time.Time // when appended
	Data []byte    // owned by the caller
}

// Reader reads a journal in sequence order. It takes no lock while reading
// and tolerates concurrent appends and segments removed by retention. A
// Reader is not safe for concurrent use.
type Reader struct {
	dir    string
	lock   *os.File // nil if the directory has no lock file
	closed bool

	want     uint64 // the next Next returns the first entry with Seq >= want
	cur      *os.File
	curFirst uint64
	curPath  string
	haveCur  bool // curFirst names the segment last read
	sc       *scanner
	curBad   bool // damage was reported in the current segment

	damage []Damage
	seen   map[Damage]bool
}

// NewReader opens the journal in dir for reading, positioned at the first
// entry. It fails with an error wrapping fs.ErrNotExist if dir does not
// exist, ErrNotJournal if dir holds no journal, and ErrNewerVersion if any
// segment has a newer major format version.
func NewReader(dir string) (*Reader, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: open reader: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("journal: open reader: %s is not a directory: %w", dir, ErrNotJournal)
	}
	firsts, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: open reader: %w", err)
	}
	r := &Reader{dir: dir, want: 1, seen: map[Damage]bool{}}
	lock, err := os.Open(filepath.Join(dir, lockName))
	switch {
	case err == nil:
		r.lock = lock
	case errors.Is(err, fs.ErrNotExist) && len(firsts) > 0:
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("journal: open reader: %s: %w", dir, ErrNotJournal)
	default:
		return nil, fmt.Errorf("journal: open reader: %w", err)
	}
	for _, first := range firsts {
		if err := checkVersion(filepath.Join(dir, segName(first))); err != nil {
			r.Close()
			return nil, fmt.Errorf("journal: open reader: %w", err)
		}
	}
	return r, nil
}

// checkVersion fails if the segment at path has a newer major version.
func checkVersion(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 12)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if _, err := decodeHeader(b[:n]); errors.Is(err, ErrNewerVersion) {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Seek positions the Reader so that the next Next returns the first entry
// with Seq >= seq.
func (r *Reader) Seek(seq uint64) error {
	if r.closed {
		return fmt.Errorf("journal: seek: %w", ErrClosed)
	}
	r.closeCur()
	r.haveCur = false
	r.want = max(seq, 1)
	return nil
}

// Next returns the next entry. At the current end of the journal it returns
// io.EOF; a later call sees entries appended since. Damaged spans are
// skipped and recorded (see Damage). A segment with a newer major format
// version fails with an error wrapping ErrNewerVersion.
func (r *Reader) Next() (Entry, error) {
	if r.closed {
		return Entry{}, fmt.Errorf("journal: next: %w", ErrClosed)
	}
	for {
		if r.cur == nil {
			ok, err := r.openNext()
			if err != nil {
				return Entry{}, fmt.Errorf("journal: next: %w", err)
			}
			if !ok {
				return Entry{}, io.EOF
			}
		}
		st, err := r.sc.next()
		if err != nil {
			return Entry{}, fmt.Errorf("journal: next: %s: %w", r.curPath, err)
		}
		switch st.kind {
		case stepFrame:
			if st.f.seq < r.want {
				continue
			}
			r.want = st.f.seq + 1
			return Entry{Seq: st.f.seq, Time: time.Unix(0, st.f.nanos), Data: bytes.Clone(st.f.data)}, nil
		case stepDamage:
			r.report(Damage{Segment: r.curPath, Offset: st.dmgOff, Bytes: st.dmgLen, Kind: st.dmgKind})
			continue
		}
		// At the end of the data, or before a tail without a valid frame.
		fi, err := r.cur.Stat()
		if err != nil {
			return Entry{}, fmt.Errorf("journal: next: %w", err)
		}
		grew := fi.Size() != r.sc.size
		r.sc.setSize(fi.Size())
		if grew {
			continue
		}
		nextFirst, err := r.nextSegment()
		if err != nil {
			return Entry{}, fmt.Errorf("journal: next: %w", err)
		}
		if nextFirst != 0 {
			// Sealed: no writer will touch this segment again, but one may
			// have appended its last record between the Stat and the listing.
			if fi, err := r.cur.Stat(); err == nil && fi.Size() != r.sc.size {
				r.sc.setSize(fi.Size())
				continue
			}
			if st.kind == stepTail {
				r.report(Damage{Segment: r.curPath, Offset: st.dmgOff, Bytes: st.dmgLen, Kind: st.dmgKind})
			}
			if !r.curBad && r.sc.last+1 < nextFirst && links(fi) > 0 {
				// The next segment starts past this one's last record:
				// records in between were cut off whole. (Retention
				// removes the oldest segments first: while this one is
				// still there, so are all after it.)
				r.report(Damage{Segment: r.curPath, Offset: r.sc.off, Kind: DamageTruncated})
			}
			r.closeCur()
			continue
		}
		if st.kind == stepEnd && !r.curBad && readMark(r.lock) > r.sc.last {
			if err := r.settleTruncated(); err != nil {
				return Entry{}, fmt.Errorf("journal: next: %w", err)
			}
		}
		if st.kind == stepTail {
			again, err := r.settleTail(st)
			if err != nil {
				return Entry{}, fmt.Errorf("journal: next: %w", err)
			}
			if again {
				continue
			}
		}
		return Entry{}, io.EOF
	}
}

// settleTail decides whether a tail of the newest segment is damage or an
// append in progress: it is damage if no writer holds the journal lock. It
// returns true if the segment changed meanwhile and must be scanned again.
func (r *Reader) settleTail(st step) (bool, error) {
	if r.lock != nil {
		err := flock(r.lock, unix.LOCK_SH|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return false, nil // a writer is appending; look again later
		}
		if err != nil {
			return false, err
		}
		defer flock(r.lock, unix.LOCK_UN)
		fi, err := r.cur.Stat()
		if err != nil {
			return false, err
		}
		if fi.Size() != r.sc.size {
			r.sc.setSize(fi.Size())
			return true, nil
		}
	}
	r.report(Damage{Segment: r.curPath, Offset: st.dmgOff, Bytes: st.dmgLen, Kind: st.dmgKind})
	return false, nil
}

// settleTruncated reports the newest segment as truncated when the
// journal's high-water mark is past its last record and no writer is
// appending (a writer updates the mark after the frame, under the lock).
func (r *Reader) settleTruncated() error {
	err := flock(r.lock, unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil
	}
	if err != nil {
		return err
	}
	defer flock(r.lock, unix.LOCK_UN)
	fi, err := r.cur.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != r.sc.size || readMark(r.lock) <= r.sc.last {
		return nil
	}
	// The record past the mark may be the first of a segment created
	// since this one was found the newest.
	if next, err := r.nextSegment(); err != nil || next != 0 {
		return err
	}
	r.report(Damage{Segment: r.curPath, Offset: r.sc.off, Kind: DamageTruncated})
	return nil
}

// openNext opens the segment to read next: the one holding r.want, or the
// first after it when retention removed it. It returns false if there is
// none yet.
func (r *Reader) openNext() (bool, error) {
	for range 100 { // a segment may vanish between listing and opening
		firsts, err := listSegments(r.dir)
		if err != nil {
			return false, err
		}
		if r.haveCur {
			i, _ := slices.BinarySearch(firsts, r.curFirst+1)
			firsts = firsts[i:]
		}
		if len(firsts) == 0 {
			return false, nil
		}
		i, found := slices.BinarySearch(firsts, r.want)
		if !found && i > 0 {
			i--
		}
		first := firsts[i]
		path := filepath.Join(r.dir, segName(first))
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return false, err
		}
		hb := make([]byte, min(fi.Size(), maxHeaderSize))
		if _, err := f.ReadAt(hb, 0); err != nil && !errors.Is(err, io.EOF) {
			f.Close()
			return false, err
		}
		h, err := decodeHeader(hb)
		if errors.Is(err, ErrNewerVersion) {
			f.Close()
			return false, fmt.Errorf("%s: %w", path, err)
		}
		start := h.size
		if err != nil || h.first != first {
			r.report(Damage{Segment: path, Offset: 0, Bytes: min(fi.Size(), headerSize), Kind: DamageHeader})
			start = headerSize
		}
		r.cur, r.curFirst, r.curPath, r.haveCur, r.curBad = f, first, path, true, false
		r.sc = newScanner(f, fi.Size(), start, first)
		return true, nil
	}
	return false, errors.New("segments keep disappearing")
}

// nextSegment returns the first sequence number of the segment after the
// current one, or 0 when the current one is the newest.
func (r *Reader) nextSegment() (uint64, error) {
	firsts, err := listSegments(r.dir)
	if err != nil {
		return 0, err
	}
	i, found := slices.BinarySearch(firsts, r.curFirst)
	if found {
		i++
	}
	if i < len(firsts) {
		return firsts[i], nil
	}
	return 0, nil
}

func (r *Reader) report(d Damage) {
	if d.Segment == r.curPath {
		r.curBad = true
	}
	if !r.seen[d] {
		r.seen[d] = true
		r.damage = append(r.damage, d)
	}
}

// Damage returns the damaged spans found so far, each once, in the order
// they were met.
func (r *Reader) Damage() []Damage { return slices.Clone(r.damage) }

func (r *Reader) closeCur() {
	if r.cur != nil {
		r.cur.Close()
		r.cur, r.sc = nil, nil
	}
}

// Close releases the Reader's files. It is idempotent.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.closeCur()
	if r.lock != nil {
		if err := r.lock.Close(); err != nil {
			return fmt.Errorf("journal: close: %w", err)
		}
	}
	return nil
}
