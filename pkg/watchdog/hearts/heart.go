package hearts

import (
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Heart is one slot of the table, claimed by the child. Beat may be called
// from any goroutine; the other methods change the slot and may also be
// called from any goroutine, but Release must not race with the other
// methods of the same Heart. The methods of a nil *Heart are no-ops.
type Heart struct {
	s    atomic.Pointer[slot]
	idx  int
	name string
}

// NewHeart claims a free slot for a heart named name, watched with the
// given timeout (0: the parent's default). The name is sanitized: bytes
// outside [A-Za-z0-9:/_-] become '_' and it is cut to MaxNameLen bytes. The
// thread id recorded is that of the calling thread; a heart beaten from a
// goroutine locked to another thread should call BindThread there. Several
// goroutines may create hearts at once. On a nil *Table it returns a nil
// *Heart and no error.
func (t *Table) NewHeart(name string, timeout time.Duration) (*Heart, error) {
	if t == nil {
		return nil, nil
	}
	if t.closed.Load() {
		return nil, fmt.Errorf("hearts: new heart %q: %w", name, ErrClosed)
	}
	if timeout < 0 {
		return nil, fmt.Errorf("hearts: new heart %q: negative timeout %v", name, timeout)
	}
	name = Sanitize(name)
	for i := range t.slots {
		s := t.slot(i)
		if !s.state.CompareAndSwap(stateFree, stateClaiming) {
			continue
		}
		s.gen.Add(1) // odd: the parent ignores the slot until it is even again
		s.ticker.Store(0)
		s.timeout.Store(int64(timeout))
		s.tid.Store(uint32(unix.Gettid()))
		storeName(s, name)
		s.gen.Add(1)
		s.state.Store(stateOn)
		h := &Heart{idx: i, name: name}
		h.s.Store(s)
		return h, nil
	}
	return nil, fmt.Errorf("hearts: new heart %q: %w (%d slots)", name, ErrFull, t.slots)
}

// Beat records that the heart is alive: one atomic add to shared memory, no
// system call, no allocation.
func (h *Heart) Beat() {
	if h == nil {
		return
	}
	if s := h.s.Load(); s != nil {
		s.ticker.Add(1)
	}
}

// Disable stops the parent watching the heart until Enable.
func (h *Heart) Disable() {
	if s := h.slot(); s != nil {
		s.state.CompareAndSwap(stateOn, stateDisabled)
	}
}

// Enable resumes watching a disabled heart; its deadlines restart from the
// moment the parent sees the change.
func (h *Heart) Enable() {
	if s := h.slot(); s != nil {
		s.state.CompareAndSwap(stateDisabled, stateOn)
	}
}

// SetTimeout overrides the heart's timeout (0: the parent's default).
// Negative values are ignored.
func (h *Heart) SetTimeout(d time.Duration) {
	if s := h.slot(); s != nil && d >= 0 {
		s.timeout.Store(int64(d))
	}
}

// Timeout returns the heart's timeout as set by the child (0: the parent's
// default).
func (h *Heart) Timeout() time.Duration {
	if s := h.slot(); s != nil {
		return time.Duration(s.timeout.Load())
	}
	return 0
}

// BindThread records the calling thread as the one that beats the heart.
func (h *Heart) BindThread() {
	if s := h.slot(); s != nil {
		s.tid.Store(uint32(unix.Gettid()))
	}
}

// UnbindThread records that no one thread beats the heart (a goroutine that
// the Go scheduler moves between threads): stalls then report no thread,
// rather than one that means nothing.
func (h *Heart) UnbindThread() {
	if s := h.slot(); s != nil {
		s.tid.Store(0)
	}
}

// Release frees the slot; later calls on h are no-ops.
func (h *Heart) Release() {
	if h == nil {
		return
	}
	if s := h.s.Swap(nil); s != nil {
		s.state.Store(stateFree)
	}
}

// Slot returns the heart's slot index, or -1 for a nil heart.
func (h *Heart) Slot() int {
	if h == nil {
		return -1
	}
	return h.idx
}

// Name returns the sanitized name.
func (h *Heart) Name() string {
	if h == nil {
		return ""
	}
	return h.name
}

func (h *Heart) slot() *slot {
	if h == nil {
		return nil
	}
	return h.s.Load()
}

// Sanitize returns name as a heart stores it: bytes outside [A-Za-z0-9:/_-]
// replaced by '_', cut to MaxNameLen bytes.
func Sanitize(name string) string {
	if len(name) > MaxNameLen {
		name = name[:MaxNameLen]
	}
	b := []byte(name)
	for i, c := range b {
		if !nameByte(c) {
			b[i] = '_'
		}
	}
	return string(b)
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == ':' || c == '/' || c == '_' || c == '-'
}

func storeName(s *slot, name string) {
	var buf [len(s.name) * 8]byte
	copy(buf[:MaxNameLen], name)
	for w := range s.name {
		var v uint64
		for j := 7; j >= 0; j-- {
			v = v<<8 | uint64(buf[w*8+j])
		}
		s.name[w].Store(v)
	}
}

// loadName reads a name written by a possibly hostile child: it stops at the
// first NUL and sanitizes what it read.
func loadName(s *slot) string {
	var buf [len(s.name) * 8]byte
	for w := range s.name {
		v := s.name[w].Load()
		for j := range 8 {
			buf[w*8+j] = byte(v >> (8 * j))
		}
	}
	n := 0
	for n < MaxNameLen && buf[n] != 0 {
		n++
	}
	return Sanitize(string(buf[:n]))
}
