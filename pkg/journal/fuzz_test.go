package journal

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// segmentSeeds returns real segments written by a Writer, intact and
// damaged in the ways a crash or a bad disk damages them.
func segmentSeeds(f testing.TB) [][]byte {
	dir := f.TempDir()
	w, err := Open(dir, Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 6 {
		if _, err := w.Append(record(i, 10+i*20)); err != nil {
			f.Fatal(err)
		}
	}
	w.Close()
	seg, err := os.ReadFile(filepath.Join(dir, segName(1)))
	if err != nil {
		f.Fatal(err)
	}
	flipped := slices.Clone(seg)
	flipped[headerSize+frameOverhead+15] ^= 0x20
	badLen := slices.Clone(seg)
	badLen[headerSize+frameOverhead+12] = 0xff
	return [][]byte{
		seg,
		seg[:headerSize],
		seg[:len(seg)-7],
		append(slices.Clone(seg), make([]byte, 64)...),
		flipped,
		badLen,
		newerHeader(1, 3, 0),
		append(newerHeader(1, 1, 9), seg[headerSize:]...),
		{},
		[]byte("MTEVJRNL"),
	}
}

// scanAll reads a segment the way a Reader does and returns its entries
// and damage. It fails the test if the scan does not move forward.
func scanAll(t *testing.T, seg []byte) ([]frame, []step, error) {
	hb := seg[:min(len(seg), maxHeaderSize)]
	h, err := decodeHeader(hb)
	if errors.Is(err, ErrNewerVersion) {
		return nil, nil, err
	}
	start := h.size
	var damage []step
	if err != nil || h.first != 1 {
		start = headerSize
		damage = append(damage, step{dmgOff: 0, dmgLen: int64(min(len(seg), headerSize)), dmgKind: DamageHeader})
	}
	sc := newScanner(bytes.NewReader(seg), int64(len(seg)), start, 1)
	var frames []frame
	for steps := 0; ; steps++ {
		if steps > len(seg)+1 {
			t.Fatalf("scan of %d bytes did not finish after %d steps", len(seg), steps)
		}
		before := sc.off
		st, err := sc.next()
		if err != nil {
			t.Fatalf("scan over memory failed: %v", err)
		}
		switch st.kind {
		case stepEnd, stepTail:
			if st.kind == stepTail {
				damage = append(damage, st)
			}
			return frames, damage, nil
		case stepDamage:
			damage = append(damage, st)
		case stepFrame:
			st.f.data = bytes.Clone(st.f.data)
			frames = append(frames, st.f)
		}
		if sc.off <= before {
			t.Fatalf("scan did not move forward at offset %d", before)
		}
	}
}

// FuzzSegment feeds arbitrary bytes to the segment scanner the Reader and
// Writer use. It runs in memory: file creation per input would make the
// fuzzer disk-bound.
func FuzzSegment(f *testing.F) {
	for _, s := range segmentSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seg []byte) {
		frames, damage, err := scanAll(t, seg)
		if err != nil {
			return
		}
		var prev uint64
		covered := int64(0)
		for _, fr := range frames {
			if fr.seq <= prev {
				t.Fatalf("seq %d after %d", fr.seq, prev)
			}
			prev = fr.seq
			// A frame is returned only if it re-encodes to the same bytes.
			enc := appendFrame(nil, fr.seq, fr.nanos, fr.data)
			if !bytes.Equal(enc, seg[fr.off:fr.end]) {
				t.Fatalf("frame at %d does not re-encode to its bytes", fr.off)
			}
			if fr.off < covered {
				t.Fatalf("frames overlap at %d", fr.off)
			}
			covered = fr.end
		}
		for _, d := range damage {
			if d.dmgKind == DamageHeader && len(seg) == 0 {
				continue
			}
			if d.dmgOff < 0 || d.dmgLen <= 0 || d.dmgOff+d.dmgLen > int64(len(seg)) {
				t.Fatalf("damage span [%d,+%d) outside a %d-byte segment", d.dmgOff, d.dmgLen, len(seg))
			}
		}
	})
}

// TestReaderAgreesWithScan reads each fuzz seed through a real Reader on a
// real file: the file-level paths see the same inputs as the scanner.
func TestReaderAgreesWithScan(t *testing.T) {
	for _, seg := range segmentSeeds(t) {
		frames, damage, err := scanAll(t, seg)
		if err != nil {
			continue
		}
		checkReader(t, seg, frames, damage)
	}
}

// checkReader reads seg as the only segment of a journal on disk, through a
// Reader, and checks it agrees with the in-memory scan.
func checkReader(t *testing.T, seg []byte, frames []frame, damage []step) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, lockName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segName(1)), seg, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var n int
	for ; ; n++ {
		if n > len(frames) {
			t.Fatalf("Reader returned more entries than the %d frames", len(frames))
		}
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if f := frames[n]; e.Seq != f.seq || !bytes.Equal(e.Data, f.data) {
			t.Fatalf("entry %d: seq %d, scan says %d", n, e.Seq, f.seq)
		}
	}
	if n != len(frames) {
		t.Fatalf("Reader returned %d entries, scan %d", n, len(frames))
	}
	if len(r.Damage()) != len(damage) {
		t.Fatalf("Reader reported %v, scan %d spans", r.Damage(), len(damage))
	}
}
