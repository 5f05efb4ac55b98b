package journal

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

func totalBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, p := range segments(t, dir) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func TestRetentionBytes(t *testing.T) {
	const maxBytes = 2000
	dir := t.TempDir()
	opts := Options{SegmentBytes: 500, MaxBytes: maxBytes, NoSync: true}
	w := mustOpen(t, dir, opts)
	for i := range 200 {
		mustAppend(t, w, record(i, 60))
		if n, segs := totalBytes(t, dir), segments(t, dir); n > maxBytes && len(segs) > 1 {
			t.Fatalf("after record %d: %d bytes in %d segments, budget %d", i+1, n, len(segs), maxBytes)
		}
	}
	w.Close()

	// The counter survives retention and reopening.
	w = mustOpen(t, dir, opts)
	if seq := mustAppend(t, w, []byte("next")); seq != 201 {
		t.Fatalf("seq after reopen = %d, want 201", seq)
	}
	got, dmg := readAll(t, dir, 0)
	if len(dmg) != 0 {
		t.Fatalf("damage: %v", dmg)
	}
	if got[0].Seq == 1 || got[len(got)-1].Seq != 201 {
		t.Fatalf("kept seqs %d..%d; want old ones dropped and 201 last", got[0].Seq, got[len(got)-1].Seq)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq != got[i-1].Seq+1 {
			t.Fatalf("gap inside the kept records: %d then %d", got[i-1].Seq, got[i].Seq)
		}
	}

	// A single segment larger than the budget is kept: it is being written.
	dir2 := t.TempDir()
	w2 := mustOpen(t, dir2, Options{MaxBytes: 10, NoSync: true})
	mustAppend(t, w2, record(0, 100))
	mustAppend(t, w2, record(1, 100))
	if got, _ := readAll(t, dir2, 0); len(got) != 2 {
		t.Fatalf("current segment lost records: %d left", len(got))
	}

	// Unlimited keeps everything.
	dir3 := t.TempDir()
	w3 := mustOpen(t, dir3, Options{SegmentBytes: 200, MaxBytes: -1, NoSync: true})
	for i := range 100 {
		mustAppend(t, w3, record(i, 60))
	}
	if got, _ := readAll(t, dir3, 0); len(got) != 100 {
		t.Fatalf("unlimited retention kept %d of 100", len(got))
	}
}

func TestRetentionAge(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxAge  time.Duration
		reopen  bool // a fresh Writer must learn the segment ages from disk
		keepOld bool // whether sealed segments of old records survive a 2h jump
	}{
		{"hour", time.Hour, false, false},
		{"hour-reopened", time.Hour, true, false},
		{"day", 24 * time.Hour, false, true},
		{"unlimited", -1, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clk := newClock()
			opts := Options{SegmentBytes: 400, MaxAge: tc.maxAge, MaxBytes: -1, NoSync: true, Now: clk.Now}
			w := mustOpen(t, dir, opts)
			for i := range 30 {
				mustAppend(t, w, record(i, 60))
			}
			// Old records in the segment being written at the jump stay:
			// that segment's newest record will be a new one.
			firsts, err := listSegments(dir)
			if err != nil {
				t.Fatal(err)
			}
			wantOld := 31 - int(firsts[len(firsts)-1])
			if tc.keepOld {
				wantOld = 30
			}
			if tc.reopen {
				w.Close()
				w = mustOpen(t, dir, opts)
			}
			clk.Advance(2 * time.Hour)
			for i := range 30 {
				mustAppend(t, w, record(i, 60))
			}
			got, _ := readAll(t, dir, 0)
			old := 0
			for _, e := range got {
				if e.Seq <= 30 {
					old++
				}
			}
			if old != wantOld {
				t.Fatalf("%d old records left, want %d", old, wantOld)
			}
			if got[len(got)-1].Seq != 60 {
				t.Fatalf("last seq %d, want 60", got[len(got)-1].Seq)
			}
		})
	}

	// The segment being written is never removed, however old.
	dir := t.TempDir()
	clk := newClock()
	w := mustOpen(t, dir, Options{MaxAge: time.Minute, NoSync: true, Now: clk.Now})
	mustAppend(t, w, []byte("a"))
	clk.Advance(time.Hour)
	mustAppend(t, w, []byte("b"))
	if got, _ := readAll(t, dir, 0); len(got) != 2 {
		t.Fatalf("current segment lost records: %d left", len(got))
	}
}

// TestReaderSurvivesRetention reads while retention removes the segments
// the Reader is on and those ahead of it.
func TestReaderSurvivesRetention(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{SegmentBytes: 300, MaxBytes: 1200, NoSync: true})
	for i := range 20 {
		mustAppend(t, w, record(i, 50))
	}
	r, err := NewReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var prev uint64
	read := 0
	for i := range 300 {
		mustAppend(t, w, record(i, 50))
		if i%3 != 0 {
			continue
		}
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			continue
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if e.Seq <= prev {
			t.Fatalf("seq %d after %d", e.Seq, prev)
		}
		prev = e.Seq
		read++
	}
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if e.Seq <= prev {
			t.Fatalf("seq %d after %d", e.Seq, prev)
		}
		prev = e.Seq
		read++
	}
	if prev != 320 {
		t.Fatalf("reader ended at seq %d, want 320", prev)
	}
	if len(r.Damage()) != 0 {
		t.Fatalf("damage: %v", r.Damage())
	}
	if read >= 320 {
		t.Fatalf("read %d records: retention removed nothing under the reader", read)
	}
}
