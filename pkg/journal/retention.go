package journal

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"time"
)

// Retention: the oldest whole segments go while the journal is over
// Options.MaxBytes or their newest record is older than Options.MaxAge.
// It runs inside Append, with the directory locked, after the record is
// written.

// retain removes the oldest segments while the journal is over its size
// budget or they are too old. The current segment is never removed, so the
// sequence counter survives.
func (w *Writer) retain(now time.Time) error {
	var total int64
	for _, s := range w.segs {
		total += s.size
	}
	cutoff := now.Add(-w.opts.MaxAge).UnixNano()
	for len(w.segs) > 1 {
		s := &w.segs[0]
		drop := w.opts.MaxBytes >= 0 && total > w.opts.MaxBytes
		if !drop && w.opts.MaxAge >= 0 {
			last, err := w.newestRecord(s)
			if err != nil {
				return err
			}
			drop = last < cutoff
		}
		if !drop {
			return nil
		}
		if err := os.Remove(w.path(s.first)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		total -= s.size
		w.segs = w.segs[1:]
	}
	return nil
}

// newestRecord returns the time of the newest record of a sealed segment,
// scanning it once.
func (w *Writer) newestRecord(s *segInfo) (int64, error) {
	if s.lastKnown {
		return s.lastNs, nil
	}
	f, err := os.Open(w.path(s.first))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil // already gone: removing it again is harmless
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	hb := make([]byte, min(fi.Size(), maxHeaderSize))
	if _, err := f.ReadAt(hb, 0); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	start, last := int64(headerSize), fi.ModTime().UnixNano()
	if h, err := decodeHeader(hb); err == nil {
		start, last = h.size, h.created
	}
	sc := newScanner(f, fi.Size(), start, s.first)
	for {
		st, err := sc.next()
		if err != nil {
			return 0, err
		}
		if st.kind == stepEnd || st.kind == stepTail {
			break
		}
	}
	if sc.lastNs != 0 {
		last = sc.lastNs
	}
	s.lastNs, s.lastKnown = last, true
	return last, nil
}
