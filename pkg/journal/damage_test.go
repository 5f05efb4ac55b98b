package journal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// buildJournal writes records into a fresh journal (one segment) and
// returns the directory, the segment's bytes and the offset of each frame.
func buildJournal(t *testing.T, records [][]byte) (dir string, seg []byte, offs []int64) {
	t.Helper()
	dir = t.TempDir()
	w := mustOpen(t, dir, Options{NoSync: true})
	off := int64(headerSize)
	for _, r := range records {
		mustAppend(t, w, r)
		offs = append(offs, off)
		off += int64(frameOverhead + len(r))
	}
	w.Close()
	seg, err := os.ReadFile(segments(t, dir)[0])
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(seg)) != off {
		t.Fatalf("segment is %d bytes, want %d", len(seg), off)
	}
	return dir, seg, offs
}

// writeSeg replaces the single segment of dir with data.
func writeSeg(t *testing.T, dir string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, segName(1))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func fiveRecords() [][]byte {
	var recs [][]byte
	for i := range 5 {
		recs = append(recs, record(i, 40))
	}
	return recs
}

func checkEntries(t *testing.T, got []Entry, recs [][]byte, seqs ...uint64) {
	t.Helper()
	if len(got) != len(seqs) {
		t.Fatalf("read %d entries, want seqs %v", len(got), seqs)
	}
	for i, e := range got {
		if e.Seq != seqs[i] || !bytes.Equal(e.Data, recs[seqs[i]-1]) {
			t.Fatalf("entry %d: seq %d %q, want seq %d %q", i, e.Seq, e.Data, seqs[i], recs[seqs[i]-1])
		}
	}
}

// TestTornTail cuts the segment at every byte of its last frame.
func TestTornTail(t *testing.T) {
	recs := fiveRecords()
	_, seg, offs := buildJournal(t, recs)
	last := offs[len(offs)-1]
	for cut := last; cut < int64(len(seg)); cut++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, lockName), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		path := writeSeg(t, dir, seg[:cut])
		var want []Damage
		if cut > last {
			want = []Damage{{Segment: path, Offset: last, Bytes: cut - last, Kind: DamageTornTail}}
		}

		got, dmg := readAll(t, dir, 0)
		checkEntries(t, got, recs, 1, 2, 3, 4)
		if !slices.Equal(dmg, want) {
			t.Fatalf("cut at %d: reader damage %v, want %v", cut, dmg, want)
		}

		var reported []Damage
		w := mustOpen(t, dir, Options{NoSync: true, OnDamage: func(d Damage) { reported = append(reported, d) }})
		if !slices.Equal(reported, want) {
			t.Fatalf("cut at %d: writer reported %v, want %v", cut, reported, want)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() != last {
			t.Fatalf("cut at %d: after Open the segment is %d bytes, want %d", cut, fi.Size(), last)
		}
		if seq := mustAppend(t, w, recs[4]); seq != 5 {
			t.Fatalf("cut at %d: append after repair got seq %d, want 5", cut, seq)
		}
		w.Close()
		got, dmg = readAll(t, dir, 0)
		checkEntries(t, got, recs, 1, 2, 3, 4, 5)
		if len(dmg) != 0 {
			t.Fatalf("cut at %d: damage after repair: %v", cut, dmg)
		}
	}
}

// TestGarbageTail covers tails that are not a prefix of a frame.
func TestGarbageTail(t *testing.T) {
	recs := fiveRecords()
	_, seg, _ := buildJournal(t, recs)
	for _, tc := range []struct {
		name string
		tail []byte
		kind string
	}{
		{"zeros", make([]byte, 100), DamageFrame},      // size grew, data never written
		{"few-zeros", make([]byte, 7), DamageTornTail}, // shorter than a frame header
		{"text", []byte("not a frame at all, clearly"), DamageFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeSeg(t, dir, append(slices.Clone(seg), tc.tail...))
			want := []Damage{{Segment: path, Offset: int64(len(seg)), Bytes: int64(len(tc.tail)), Kind: tc.kind}}
			got, dmg := readAll(t, dir, 0)
			checkEntries(t, got, recs, 1, 2, 3, 4, 5)
			if !slices.Equal(dmg, want) {
				t.Fatalf("reader damage %v, want %v", dmg, want)
			}
			var reported []Damage
			w := mustOpen(t, dir, Options{NoSync: true, OnDamage: func(d Damage) { reported = append(reported, d) }})
			if !slices.Equal(reported, want) {
				t.Fatalf("writer reported %v, want %v", reported, want)
			}
			if seq := mustAppend(t, w, []byte("six")); seq != 6 {
				t.Fatalf("seq %d, want 6", seq)
			}
			got, dmg = readAll(t, dir, 6)
			if len(got) != 1 || string(got[0].Data) != "six" || len(dmg) != 0 {
				t.Fatalf("after repair: %v %v", got, dmg)
			}
		})
	}
}

// TestFlippedBit flips every bit of a record in the middle of a segment.
func TestFlippedBit(t *testing.T) {
	recs := fiveRecords()
	_, seg, offs := buildJournal(t, recs)
	start, end := offs[2], offs[3]
	for bit := start * 8; bit < end*8; bit++ {
		dir := t.TempDir()
		bad := slices.Clone(seg)
		bad[bit/8] ^= 1 << (bit % 8)
		path := writeSeg(t, dir, bad)

		got, dmg := readAll(t, dir, 0)
		checkEntries(t, got, recs, 1, 2, 4, 5)
		if len(dmg) != 1 || dmg[0].Segment != path || dmg[0].Offset != start || dmg[0].Bytes != end-start ||
			(dmg[0].Kind != DamageChecksum && dmg[0].Kind != DamageFrame) {
			t.Fatalf("bit %d: damage %v, want one span [%d,%d)", bit, dmg, start, end)
		}
		// Only a damaged length or seq field makes the frame unparseable.
		inData := bit/8 >= start+frameHead
		if inData && dmg[0].Kind != DamageChecksum {
			t.Fatalf("bit %d in the data: kind %s, want %s", bit, dmg[0].Kind, DamageChecksum)
		}
	}

	// A Writer reports middle damage, keeps the segment and goes on.
	dir := t.TempDir()
	bad := slices.Clone(seg)
	bad[start+frameHead+3] ^= 0x10
	path := writeSeg(t, dir, bad)
	var reported []Damage
	w := mustOpen(t, dir, Options{NoSync: true, OnDamage: func(d Damage) { reported = append(reported, d) }})
	want := []Damage{{Segment: path, Offset: start, Bytes: end - start, Kind: DamageChecksum}}
	if !slices.Equal(reported, want) {
		t.Fatalf("writer reported %v, want %v", reported, want)
	}
	if seq := mustAppend(t, w, []byte("six")); seq != 6 {
		t.Fatalf("seq %d, want 6", seq)
	}
	got, _ := readAll(t, dir, 5)
	if len(got) != 2 || got[0].Seq != 5 || got[1].Seq != 6 {
		t.Fatalf("after append: %v", got)
	}
}

// TestCorruptLastRecord: a complete last frame whose data was damaged keeps
// its sequence number.
func TestCorruptLastRecord(t *testing.T) {
	recs := fiveRecords()
	dir, seg, offs := buildJournal(t, recs)
	last := offs[4]
	bad := slices.Clone(seg)
	bad[last+frameHead+1] ^= 0x01
	path := writeSeg(t, dir, bad)
	want := []Damage{{Segment: path, Offset: last, Bytes: int64(len(seg)) - last, Kind: DamageChecksum}}

	got, dmg := readAll(t, dir, 0)
	checkEntries(t, got, recs, 1, 2, 3, 4)
	if !slices.Equal(dmg, want) {
		t.Fatalf("reader damage %v, want %v", dmg, want)
	}
	var reported []Damage
	w := mustOpen(t, dir, Options{NoSync: true, OnDamage: func(d Damage) { reported = append(reported, d) }})
	if !slices.Equal(reported, want) {
		t.Fatalf("writer reported %v, want %v", reported, want)
	}
	if seq := mustAppend(t, w, []byte("six")); seq != 6 {
		t.Fatalf("seq %d, want 6: seq 5 was stored before", seq)
	}
	got, dmg = readAll(t, dir, 0)
	if len(got) != 5 || got[4].Seq != 6 || !slices.Equal(dmg, want) {
		t.Fatalf("after append: %d entries, damage %v", len(got), dmg)
	}
}

func TestDamagedHeader(t *testing.T) {
	recs := fiveRecords()
	_, seg, _ := buildJournal(t, recs)
	for _, tc := range []struct {
		name string
		off  int
	}{
		{"magic", 0},
		{"length", 12},
		{"first-seq", 17},
		{"checksum", 33},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bad := slices.Clone(seg)
			bad[tc.off] ^= 0x04
			path := writeSeg(t, dir, bad)
			want := []Damage{{Segment: path, Offset: 0, Bytes: headerSize, Kind: DamageHeader}}
			got, dmg := readAll(t, dir, 0)
			checkEntries(t, got, recs, 1, 2, 3, 4, 5)
			if !slices.Equal(dmg, want) {
				t.Fatalf("damage %v, want %v", dmg, want)
			}
			// The Writer starts a new segment rather than extend this one.
			w := mustOpen(t, dir, Options{NoSync: true})
			if seq := mustAppend(t, w, []byte("six")); seq != 6 {
				t.Fatalf("seq %d, want 6", seq)
			}
			if n := len(segments(t, dir)); n != 2 {
				t.Fatalf("%d segments, want 2", n)
			}
			got, _ = readAll(t, dir, 0)
			if len(got) != 6 {
				t.Fatalf("read %d entries, want 6", len(got))
			}
		})
	}
}

// TestTornTailOfSealedSegment: damage in a segment that is no longer the
// newest is reported and the reader goes on with the next one.
func TestTornTailOfSealedSegment(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{SegmentBytes: 200, NoSync: true})
	for i := range 12 {
		mustAppend(t, w, []byte(fmt.Sprintf("record-%02d-%s", i, bytes.Repeat([]byte("x"), 30))))
	}
	w.Close()
	segs := segments(t, dir)
	if len(segs) < 3 {
		t.Fatalf("want at least 3 segments, got %d", len(segs))
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segs[0], data[:len(data)-5], 0o600); err != nil {
		t.Fatal(err)
	}
	got, dmg := readAll(t, dir, 0)
	if len(dmg) != 1 || dmg[0].Segment != segs[0] || dmg[0].Kind != DamageTornTail {
		t.Fatalf("damage %v, want one torn tail in %s", dmg, segs[0])
	}
	if len(got) != 11 || got[len(got)-1].Seq != 12 {
		t.Fatalf("read %d entries ending at %d, want 11 ending at 12", len(got), got[len(got)-1].Seq)
	}
}

// TestRepairWhileOpen: another process died in the middle of an append
// while this Writer was open; the next Append reports and repairs it.
func TestRepairWhileOpen(t *testing.T) {
	dir := t.TempDir()
	var reported []Damage
	w := mustOpen(t, dir, Options{NoSync: true, OnDamage: func(d Damage) { reported = append(reported, d) }})
	for i := range 3 {
		mustAppend(t, w, record(i, 30))
	}
	path := segments(t, dir)[0]
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	torn := appendFrame(nil, 4, 1, record(3, 30))[:25]
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(torn); err != nil {
		t.Fatal(err)
	}
	f.Close()

	if seq := mustAppend(t, w, []byte("four")); seq != 4 {
		t.Fatalf("seq %d, want 4", seq)
	}
	want := []Damage{{Segment: path, Offset: fi.Size(), Bytes: int64(len(torn)), Kind: DamageTornTail}}
	if !slices.Equal(reported, want) {
		t.Fatalf("reported %v, want %v", reported, want)
	}
	got, dmg := readAll(t, dir, 0)
	if len(got) != 4 || string(got[3].Data) != "four" || len(dmg) != 0 {
		t.Fatalf("after repair: %d entries, damage %v", len(got), dmg)
	}
}

// TestSealedNewest: a Writer died after sealing the newest segment and
// before creating the next one.
func TestSealedNewest(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{NoSync: true})
	for i := range 3 {
		mustAppend(t, w, record(i, 30))
	}
	w.Close()
	if err := os.Chmod(segments(t, dir)[0], sealedMode); err != nil {
		t.Fatal(err)
	}
	w = mustOpen(t, dir, Options{NoSync: true})
	if seq := mustAppend(t, w, []byte("four")); seq != 4 {
		t.Fatalf("seq %d, want 4", seq)
	}
	segs := segments(t, dir)
	if len(segs) != 2 || segs[1] != filepath.Join(dir, segName(4)) {
		t.Fatalf("segments %v, want a new one starting at 4", segs)
	}
	got, dmg := readAll(t, dir, 0)
	if len(got) != 4 || len(dmg) != 0 {
		t.Fatalf("read %d entries, damage %v", len(got), dmg)
	}
}

// TestRollWithoutModeBits: on a file system that ignores mode bits, Writers
// still notice each other's rolls.
func TestRollWithoutModeBits(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 200, NoSync: true}
	ws := []*Writer{mustOpen(t, dir, opts), mustOpen(t, dir, opts)}
	for _, w := range ws {
		w.sealSeen = false
	}
	var seqs []uint64
	for i := range 40 {
		w := ws[i%2]
		if i%5 == 0 {
			w = ws[0] // runs of appends from one Writer, so it rolls alone
		}
		seqs = append(seqs, mustAppend(t, w, record(i, 40)))
		for _, p := range segments(t, dir) {
			if err := os.Chmod(p, 0o600); err != nil { // the seal does not stick
				t.Fatal(err)
			}
		}
	}
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("append %d got seq %d", i, seq)
		}
	}
	got, dmg := readAll(t, dir, 0)
	if len(got) != 40 || len(dmg) != 0 {
		t.Fatalf("read %d entries, damage %v", len(got), dmg)
	}
}
