package journal

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain lets the test binary act as a second appending process.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(childMain(dir))
	}
	os.Exit(m.Run())
}

// clock is an injectable, advanceable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustOpen(t *testing.T, dir string, opts Options) *Writer {
	t.Helper()
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func mustAppend(t *testing.T, w *Writer, data []byte) uint64 {
	t.Helper()
	seq, err := w.Append(data)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return seq
}

// readAll reads every entry of dir from from on.
func readAll(t *testing.T, dir string, from uint64) ([]Entry, []Damage) {
	t.Helper()
	r, err := NewReader(dir)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	defer r.Close()
	if err := r.Seek(from); err != nil {
		t.Fatal(err)
	}
	var out []Entry
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, r.Damage()
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, e)
	}
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	firsts, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range firsts {
		names = append(names, filepath.Join(dir, segName(f)))
	}
	return names
}

func record(i int, size int) []byte {
	b := bytes.Repeat([]byte{byte('a' + i%26)}, size)
	copy(b, fmt.Sprintf("rec-%d-", i))
	return b
}

func TestRoundTrip(t *testing.T) {
	records := [][]byte{
		{},
		[]byte(`{"reason":"crash","signal":"SIGSEGV"}`),
		record(2, 1024),
		record(3, 5000), // larger than a segment: gets one of its own
		{0, 0, 0, 0, 0xff, 0xfe},
		record(5, 100<<10),
		[]byte("x"),
	}
	for _, segBytes := range []int64{0, 2048} {
		t.Run(fmt.Sprintf("segment-%d", segBytes), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "j")
			clk := newClock()
			w := mustOpen(t, dir, Options{SegmentBytes: segBytes, NoSync: true, Now: clk.Now})
			var times []time.Time
			for i, rec := range records {
				if seq := mustAppend(t, w, rec); seq != uint64(i+1) {
					t.Fatalf("record %d got seq %d", i, seq)
				}
				times = append(times, clk.t)
			}
			got, dmg := readAll(t, dir, 0)
			if len(dmg) != 0 {
				t.Errorf("damage on a clean journal: %v", dmg)
			}
			if len(got) != len(records) {
				t.Fatalf("read %d entries, want %d", len(got), len(records))
			}
			for i, e := range got {
				if e.Seq != uint64(i+1) || !bytes.Equal(e.Data, records[i]) || !e.Time.Equal(times[i]) {
					t.Errorf("entry %d = seq %d time %v %d bytes; want seq %d time %v %d bytes",
						i, e.Seq, e.Time, len(e.Data), i+1, times[i], len(records[i]))
				}
			}
			if segBytes > 0 && len(segments(t, dir)) < 3 {
				t.Errorf("small segments did not roll: %v", segments(t, dir))
			}
			fi, err := os.Stat(dir)
			if err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("journal dir mode = %v, %v; want 0700", fi.Mode().Perm(), err)
			}
		})
	}
}

func TestSeqAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	var want uint64
	for round := range 4 {
		w, err := Open(dir, Options{SegmentBytes: 300, NoSync: round%2 == 0})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 7 {
			want++
			if seq := mustAppend(t, w, record(i, 50)); seq != want {
				t.Fatalf("round %d: seq %d, want %d", round, seq, want)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := w.Append([]byte("late")); !errors.Is(err, ErrClosed) {
			t.Fatalf("Append after Close: %v, want ErrClosed", err)
		}
	}
	got, _ := readAll(t, dir, 1)
	if len(got) != int(want) || got[len(got)-1].Seq != want {
		t.Fatalf("read %d entries, want %d", len(got), want)
	}
}

func TestSeek(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{SegmentBytes: 256, NoSync: true})
	for i := range 30 {
		mustAppend(t, w, record(i, 40))
	}
	for _, tc := range []struct {
		seek      uint64
		wantFirst uint64
		wantN     int
	}{
		{0, 1, 30},
		{1, 1, 30},
		{2, 2, 29},
		{17, 17, 14},
		{30, 30, 1},
		{31, 0, 0},
		{1000, 0, 0},
	} {
		got, _ := readAll(t, dir, tc.seek)
		if len(got) != tc.wantN || (tc.wantN > 0 && got[0].Seq != tc.wantFirst) {
			t.Errorf("Seek(%d): got %d entries starting at %v; want %d starting at %d",
				tc.seek, len(got), got, tc.wantN, tc.wantFirst)
		}
	}

	// A Reader at the end sees later appends, and can seek back.
	r, err := NewReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Seek(31); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next past the end: %v, want io.EOF", err)
	}
	mustAppend(t, w, []byte("thirty-one"))
	e, err := r.Next()
	if err != nil || e.Seq != 31 || string(e.Data) != "thirty-one" {
		t.Fatalf("Next after append = %d %q %v", e.Seq, e.Data, err)
	}
	if err := r.Seek(5); err != nil {
		t.Fatal(err)
	}
	if e, err := r.Next(); err != nil || e.Seq != 5 {
		t.Fatalf("Next after Seek(5) = %d %v", e.Seq, err)
	}
	r.Close()
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
}

func TestTooLarge(t *testing.T) {
	w := mustOpen(t, t.TempDir(), Options{NoSync: true})
	_, err := w.Append(make([]byte, MaxRecordBytes+1))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append of %d bytes: %v, want ErrTooLarge", MaxRecordBytes+1, err)
	}
	if seq := mustAppend(t, w, []byte("fine")); seq != 1 {
		t.Fatalf("seq after a refused record = %d, want 1", seq)
	}
}

func TestNewReaderErrors(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(tmp, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir  string
		want error
	}{
		{filepath.Join(tmp, "missing"), fs.ErrNotExist},
		{empty, ErrNotJournal},
		{file, ErrNotJournal},
	} {
		_, err := NewReader(tc.dir)
		if !errors.Is(err, tc.want) {
			t.Errorf("NewReader(%s) = %v, want %v", tc.dir, err, tc.want)
		}
	}
}

// newerHeader is a valid-looking header of format version major.minor.
func newerHeader(first uint64, major, minor uint16) []byte {
	h := encodeHeader(first, 0)
	h[8], h[9] = byte(major), byte(major>>8)
	h[10], h[11] = byte(minor), byte(minor>>8)
	return h
}

func TestNewerVersion(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{NoSync: true})
	mustAppend(t, w, []byte("one"))
	mustAppend(t, w, []byte("two"))
	w.Close()

	r, err := NewReader(dir) // opened before the newer segment appears
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	newer := filepath.Join(dir, segName(3))
	if err := os.WriteFile(newer, newerHeader(3, 2, 5), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrNewerVersion) {
			t.Fatalf("%s: %v, want ErrNewerVersion", what, err)
		}
		if msg := err.Error(); !strings.Contains(msg, "2.5") || !strings.Contains(msg, "1.x") {
			t.Fatalf("%s: %q does not name both versions", what, msg)
		}
	}
	_, err = NewReader(dir)
	check("NewReader", err)
	_, err = Open(dir, Options{})
	check("Open", err)

	for range 2 {
		if _, err := r.Next(); err != nil {
			t.Fatalf("Next before the newer segment: %v", err)
		}
	}
	_, err = r.Next()
	check("Next", err)

	// A newer minor version with a longer header is read.
	dir2 := t.TempDir()
	w2 := mustOpen(t, dir2, Options{NoSync: true})
	mustAppend(t, w2, []byte("a"))
	w2.Close()
	seg := segments(t, dir2)[0]
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	frames := data[headerSize:]
	h := make([]byte, 48)
	copy(h, data[:32])
	h[10] = 7                      // minor 7
	h[12] = byte(len(h))           // header length 48
	copy(h[32:44], "future!!!!!!") // fields this build does not know
	sum := crc32c(h[:44])
	h[44], h[45], h[46], h[47] = byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24)
	if err := os.WriteFile(seg, append(h, frames...), 0o600); err != nil {
		t.Fatal(err)
	}
	got, dmg := readAll(t, dir2, 0)
	if len(got) != 1 || string(got[0].Data) != "a" || len(dmg) != 0 {
		t.Fatalf("minor 1.7 segment: got %v damage %v", got, dmg)
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
