package hearts

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

func newTestTable(t testing.TB, slots int) (*Table, *os.File) {
	t.Helper()
	tbl, f, err := Create(slots)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tbl.Close()
		f.Close()
	})
	return tbl, f
}

func TestLayoutAlignment(t *testing.T) {
	tbl, _ := newTestTable(t, 40)
	start := uintptr(unsafe.Pointer(unsafe.SliceData(tbl.mem)))
	if start%uintptr(os.Getpagesize()) != 0 {
		t.Fatalf("mapping at %#x is not page aligned", start)
	}
	for i := range tbl.Slots() {
		s := tbl.slot(i)
		for _, f := range []struct {
			name string
			p    unsafe.Pointer
		}{
			{"ticker", unsafe.Pointer(&s.ticker)},
			{"timeout", unsafe.Pointer(&s.timeout)},
			{"name", unsafe.Pointer(&s.name[0])},
		} {
			off := uintptr(f.p) - start
			if off%8 != 0 || off/cacheLine != (off+7)/cacheLine {
				t.Fatalf("slot %d %s at offset %d straddles a cache line or is misaligned", i, f.name, off)
			}
		}
		if off := uintptr(unsafe.Pointer(s)) - start; off%cacheLine != 0 {
			t.Fatalf("slot %d at offset %d is not cache-line aligned", i, off)
		}
	}
	if m := string(tbl.mem[:8]); m != "MTHRT1\x00\x00" {
		t.Fatalf("magic bytes %q", m)
	}
	if off := uintptr(unsafe.Pointer(&tbl.hdr.starts)) - start; off != 32 {
		t.Fatalf("start count at offset %d, layout says 32", off)
	}
}

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(h *header)
		want    error
		msg     string
	}{
		{"newer major", func(h *header) { h.major = 2; h.minor = 3 }, ErrVersion, "layout 2.3, this build reads 1.x"},
		{"older major", func(h *header) { h.major = 0 }, ErrVersion, "layout 0.0"},
		{"bad magic", func(h *header) { h.magic = 0x1234 }, ErrFormat, "bad magic"},
		{"zero slots", func(h *header) { h.slots = 0 }, ErrFormat, "slot count 0"},
		{"too many slots", func(h *header) { h.slots = 1000 }, ErrFormat, "do not fit"},
		{"odd slot size", func(h *header) { h.slotSize = 130 }, ErrFormat, "slot size 130"},
		{"small slot size", func(h *header) { h.slotSize = 64 }, ErrFormat, "slot size 64"},
		{"slot offset", func(h *header) { h.slotsOff = 72 }, ErrFormat, "offset 72"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl, f := newTestTable(t, 8)
			tt.corrupt(tbl.hdr)
			_, err := Open(f)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "hearts: open: ") {
				t.Fatalf("Open: %q, want it to contain %q", err, tt.msg)
			}
		})
	}
}

func TestOpenNewerMinorWiderSlots(t *testing.T) {
	// A 1.1 table with 192-byte slots is read with the header's stride.
	tbl, f := newTestTable(t, 8)
	tbl.hdr.minor = 1
	tbl.hdr.slotSize = 192
	tbl.hdr.slots = 5
	child, err := Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer child.Close()
	h, err := child.NewHeart("x", 0)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := child.NewHeart("y", 0)
	if err != nil {
		t.Fatal(err)
	}
	h2.Beat()
	s := (*slot)(unsafe.Add(tbl.base, 192))
	if h.Slot() != 0 || h2.Slot() != 1 || s.ticker.Load() != 1 || loadName(s) != "y" {
		t.Fatalf("second heart not at offset 64+192: slot %d ticker %d name %q", h2.Slot(), s.ticker.Load(), loadName(s))
	}
}

func TestOpenNotATable(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Open(f); !errors.Is(err, ErrFormat) {
		t.Fatalf("empty file: %v, want ErrFormat", err)
	}
	if _, err := f.WriteString(strings.Repeat("not a heart table ", 400)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(f); !errors.Is(err, ErrFormat) {
		t.Fatalf("text file: %v, want ErrFormat", err)
	}
}

func TestOpenEnv(t *testing.T) {
	tests := []struct {
		val  string
		want error
		msg  string
	}{
		{"", ErrNotSupervised, "MTEV_HEARTS_FD is unset"},
		{"abc", nil, `MTEV_HEARTS_FD="abc"`},
		{"1", nil, "above 2"},
	}
	for _, tt := range tests {
		_, err := openEnv(tt.val)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("openEnv(%q) = %v, want %v containing %q", tt.val, err, tt.want, tt.msg)
		}
	}
}

func TestSealed(t *testing.T) {
	_, f := newTestTable(t, 8)
	if err := f.Truncate(0); err == nil {
		t.Fatal("the table file could be shrunk")
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"e:default/1", "e:default/1"},
		{"a b.c", "a_b_c"},
		{"ünï", "__n__"},
		{"A-Z_0:9/", "A-Z_0:9/"},
		{strings.Repeat("x", 100), strings.Repeat("x", MaxNameLen)},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Sanitize(tt.in); got != tt.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNameRoundTrip(t *testing.T) {
	tbl, _ := newTestTable(t, 4)
	long := strings.Repeat("n", 70)
	h, err := tbl.NewHeart(long, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := loadName(tbl.slot(h.Slot())); got != long[:MaxNameLen] || h.Name() != got {
		t.Fatalf("name read back %q, heart says %q", got, h.Name())
	}
	// A hostile child writing raw bytes gets them sanitized.
	tbl.slot(0).name[0].Store(0x00_41_0a_42_ff_43_20_44)
	if got := loadName(tbl.slot(0)); got != "D_C_B_A" {
		t.Fatalf("hostile name read as %q", got)
	}
}

func TestConcurrentNewHeart(t *testing.T) {
	const slots, workers, each = 64, 8, 12 // 96 attempts for 64 slots
	tbl, _ := newTestTable(t, slots)
	var (
		mu   sync.Mutex
		got  = map[int]string{}
		full int
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("w%d/%d", w, i)
				h, err := tbl.NewHeart(name, time.Second)
				mu.Lock()
				switch {
				case errors.Is(err, ErrFull):
					full++
				case err != nil:
					t.Error(err)
				default:
					if prev, dup := got[h.Slot()]; dup {
						t.Errorf("slot %d handed to %s and %s", h.Slot(), prev, name)
					}
					got[h.Slot()] = name
					h.Beat()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != slots || full != workers*each-slots {
		t.Fatalf("%d hearts created, %d refused; want %d and %d", len(got), full, slots, workers*each-slots)
	}
	for i, name := range got {
		if n := loadName(tbl.slot(i)); n != name {
			t.Errorf("slot %d named %q, created as %q", i, n, name)
		}
		if tk := tbl.slot(i).ticker.Load(); tk != 1 {
			t.Errorf("slot %d ticker %d, want 1", i, tk)
		}
	}
}

func TestHeartLifecycle(t *testing.T) {
	tbl, _ := newTestTable(t, 2)
	a, err := tbl.NewHeart("a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.NewHeart("b", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.NewHeart("c", 0); !errors.Is(err, ErrFull) {
		t.Fatalf("third heart in two slots: %v, want ErrFull", err)
	}
	if _, err := tbl.NewHeart("neg", -time.Second); err == nil {
		t.Fatal("negative timeout accepted")
	}
	a.SetTimeout(3 * time.Second)
	if a.Timeout() != 3*time.Second {
		t.Fatalf("timeout %v after SetTimeout", a.Timeout())
	}
	a.Disable()
	if st := tbl.slot(0).state.Load(); st != stateDisabled {
		t.Fatalf("state %d after Disable", st)
	}
	a.Enable()
	if st := tbl.slot(0).state.Load(); st != stateOn {
		t.Fatalf("state %d after Enable", st)
	}
	a.Release()
	a.Beat() // no-op after Release
	a.Release()
	c, err := tbl.NewHeart("c", 0)
	if err != nil || c.Slot() != 0 {
		t.Fatalf("reusing the released slot: slot %d, %v", c.Slot(), err)
	}
	if tk := tbl.slot(0).ticker.Load(); tk != 0 {
		t.Fatalf("reused slot ticker %d, want 0", tk)
	}

	if tbl.StartCount() != 0 {
		t.Fatalf("start count %d after Create", tbl.StartCount())
	}
	tbl.Ready()
	tbl.DisableAll()
	if err := tbl.Reset(); err != nil {
		t.Fatal(err)
	}
	if tbl.StartCount() != 1 || tbl.IsReady() || tbl.AllDisabled() || tbl.slot(0).state.Load() != stateFree {
		t.Fatalf("after Reset: starts %d ready %v all-off %v state %d",
			tbl.StartCount(), tbl.IsReady(), tbl.AllDisabled(), tbl.slot(0).state.Load())
	}
	if err := tbl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := tbl.NewHeart("d", 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewHeart after Close: %v", err)
	}
	if err := tbl.Reset(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reset after Close: %v", err)
	}
}

func TestNilSafe(t *testing.T) {
	var tbl *Table
	h, err := tbl.NewHeart("x", 0)
	if h != nil || err != nil {
		t.Fatalf("nil table NewHeart = %v, %v", h, err)
	}
	var b interface{ Beat() } = h
	b.Beat()
	h.Disable()
	h.Enable()
	h.SetTimeout(time.Second)
	h.BindThread()
	h.Release()
	tbl.Ready()
	tbl.DisableAll()
	tbl.EnableAll()
	if tbl.StartCount() != 0 || tbl.IsReady() || tbl.Close() != nil || h.Slot() != -1 || h.Timeout() != 0 {
		t.Fatal("nil values report state")
	}
}
