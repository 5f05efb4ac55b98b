package journal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

// frame is one decoded record frame. data aliases the scanner's window and
// is valid only until the next scanner call.
type frame struct {
	off   int64
	end   int64
	seq   uint64
	nanos int64
	data  []byte
}

// verdict classifies the bytes at one offset of a segment.
type verdict int

const (
	vOK          verdict = iota
	vShort               // a plausible frame that runs past the end of the data
	vBadCRC              // a complete, plausible frame whose checksum fails
	vImplausible         // not a frame: impossible length or sequence number
)

type stepKind int

const (
	stepFrame  stepKind = iota // a valid frame; the scanner moved past it
	stepDamage                 // a damaged span was skipped; the scanner moved to the next valid frame
	stepEnd                    // the scanner is exactly at the end of the data
	stepTail                   // no valid frame in [off, size); the scanner did not move
)

type step struct {
	kind    stepKind
	f       frame
	dmgOff  int64
	dmgLen  int64
	dmgKind string
	first   verdict // verdict at the damaged offset (stepDamage, stepTail)
	firstF  frame   // the frame header found there, when plausible
}

const (
	windowSize = 64 << 10
	// resyncBudget bounds the bytes checksummed while searching for the next
	// valid frame after damage, so crafted input cannot make a scan quadratic.
	resyncBudget = 64 << 20
)

// scanner walks the frames of one segment. It never panics or loops on
// arbitrary input: every step either moves forward or reports the end.
type scanner struct {
	ra      io.ReaderAt
	size    int64  // bytes of the segment that may be read
	off     int64  // offset of the next frame
	last    uint64 // seq of the last valid frame, or first-1
	lastEnd int64  // end of the last valid frame, or the header end
	lastNs  int64  // time of the last valid frame, 0 if none

	win    []byte
	winOff int64
}

func newScanner(ra io.ReaderAt, size, start int64, first uint64) *scanner {
	return &scanner{ra: ra, size: size, off: start, last: first - 1, lastEnd: start}
}

// setSize changes the readable size and drops cached bytes, which may be
// stale if the file was truncated and rewritten.
func (s *scanner) setSize(size int64) {
	s.size = size
	s.win = s.win[:0]
}

// get returns up to n bytes at off, fewer only at the end of the data.
func (s *scanner) get(off, n int64) ([]byte, error) {
	if off >= s.size || n <= 0 {
		return nil, nil
	}
	if off+n > s.size {
		n = s.size - off
	}
	if off >= s.winOff && off+n <= s.winOff+int64(len(s.win)) {
		return s.win[off-s.winOff : off-s.winOff+n], nil
	}
	want := max(n, windowSize)
	if off+want > s.size {
		want = s.size - off
	}
	if int64(cap(s.win)) < want {
		s.win = make([]byte, want)
	}
	s.win = s.win[:want]
	got, err := s.ra.ReadAt(s.win, off)
	s.win = s.win[:got]
	s.winOff = off
	if err != nil && !errors.Is(err, io.EOF) {
		s.win = s.win[:0]
		return nil, err
	}
	if int64(got) < n {
		n = int64(got)
	}
	return s.win[:n], nil
}

// maxSeqAt is the largest sequence number a frame at off may carry: each
// record lost since the last valid frame took at least frameOverhead bytes.
func (s *scanner) maxSeqAt(off int64) uint64 {
	return s.last + 1 + uint64((off-s.lastEnd)/frameOverhead)
}

// examine classifies the bytes at off. budget, when not nil, is charged for
// checksummed bytes; an exhausted budget yields vImplausible.
func (s *scanner) examine(off int64, budget *int64) (frame, verdict, error) {
	f := frame{off: off}
	h, err := s.get(off, frameHead)
	if err != nil {
		return f, vImplausible, err
	}
	if len(h) < frameHead {
		return f, vShort, nil
	}
	n := int64(binary.LittleEndian.Uint32(h))
	f.seq = binary.LittleEndian.Uint64(h[4:])
	f.nanos = int64(binary.LittleEndian.Uint64(h[12:]))
	f.end = off + frameOverhead + n
	if n > MaxRecordBytes || f.seq <= s.last || f.seq > s.maxSeqAt(off) {
		return f, vImplausible, nil
	}
	if f.end > s.size {
		return f, vShort, nil
	}
	if budget != nil {
		if *budget < n {
			return f, vImplausible, nil
		}
		*budget -= n
	}
	b, err := s.get(off, frameOverhead+n)
	if err != nil {
		return f, vImplausible, err
	}
	if int64(len(b)) < frameOverhead+n {
		return f, vShort, nil
	}
	sum := binary.LittleEndian.Uint32(b[frameHead+n:])
	if crc32.Checksum(b[:frameHead+n], castagnoli) != sum {
		return f, vBadCRC, nil
	}
	f.data = b[frameHead : frameHead+n]
	return f, vOK, nil
}

// next advances by one step. I/O errors are returned as they are.
func (s *scanner) next() (step, error) {
	if s.off >= s.size {
		return step{kind: stepEnd}, nil
	}
	f, v, err := s.examine(s.off, nil)
	if err != nil {
		return step{}, err
	}
	if v == vOK {
		s.accept(f)
		return step{kind: stepFrame, f: f}, nil
	}
	budget := int64(resyncBudget)
	for p := s.off + 1; p+frameOverhead <= s.size; p++ {
		_, gv, err := s.examine(p, &budget)
		if err != nil {
			return step{}, err
		}
		if gv != vOK {
			continue
		}
		st := step{kind: stepDamage, dmgOff: s.off, dmgLen: p - s.off, first: v, firstF: f}
		st.dmgKind = DamageFrame
		if v == vBadCRC {
			st.dmgKind = DamageChecksum
		}
		s.off = p
		return st, nil
	}
	st := step{kind: stepTail, dmgOff: s.off, dmgLen: s.size - s.off, first: v, firstF: f}
	switch {
	case v == vBadCRC:
		st.dmgKind = DamageChecksum
	case v == vShort, s.size-s.off < frameHead:
		st.dmgKind = DamageTornTail
	default:
		st.dmgKind = DamageFrame
	}
	return st, nil
}

func (s *scanner) accept(f frame) {
	s.off = f.end
	s.last = f.seq
	s.lastEnd = f.end
	s.lastNs = f.nanos
}
