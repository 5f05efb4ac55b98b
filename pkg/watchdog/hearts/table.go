package hearts

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// EnvFD names the environment variable that carries, in the child, the
// number of the file descriptor holding the heart table.
const EnvFD = "MTEV_HEARTS_FD"

// Layout version written by Create. A reader accepts any minor version of
// its own major and refuses every other major.
const (
	LayoutMajor = 1
	LayoutMinor = 0
)

// MaxSlots bounds the slot count of a table, on both sides.
const MaxSlots = 65536

// MaxNameLen is the longest heart name kept, in bytes.
const MaxNameLen = 63

const (
	magic      = 0x0031545248544d // "MTHRT1\x00\x00" read as a little-endian uint64
	headerSize = 64
	slotSize   = 128
	cacheLine  = 64
)

// Slot states.
const (
	stateFree     = 0
	stateClaiming = 1
	stateOn       = 2
	stateDisabled = 3
)

// Errors returned by this package.
var (
	// ErrNotSupervised is returned by OpenFromEnv when the process was not
	// started by a supervisor (EnvFD is unset).
	ErrNotSupervised = errors.New("not supervised")
	// ErrVersion is returned by Open for a table whose major layout version
	// this build does not read.
	ErrVersion = errors.New("unsupported layout version")
	// ErrFormat is returned by Open for a file that is not a heart table or
	// whose header is inconsistent with its size.
	ErrFormat = errors.New("not a heart table")
	// ErrFull is returned by NewHeart when every slot is taken.
	ErrFull = errors.New("no free heart slot")
	// ErrClosed is returned by operations on a closed table.
	ErrClosed = errors.New("table closed")
)

// header is the first 64 bytes of the table. Field offsets are part of the
// layout contract (see doc.go); the size checks below keep them honest.
type header struct {
	magic    uint64        // 0
	major    uint32        // 8
	minor    uint32        // 12
	slots    uint32        // 16
	slotSize uint32        // 20
	slotsOff uint32        // 24
	_        uint32        // 28
	starts   atomic.Uint64 // 32
	ready    atomic.Uint32 // 40
	allOff   atomic.Uint32 // 44
	_        [2]uint64     // 48
}

// slot is one heart. The ticker shares its line with the fields the child
// writes only when it changes the heart; the name fills the second line.
type slot struct {
	ticker  atomic.Uint64    // 0
	timeout atomic.Int64     // 8, nanoseconds; 0 means the parent's default
	state   atomic.Uint32    // 16
	tid     atomic.Uint32    // 20
	gen     atomic.Uint32    // 24, odd while the child rewrites the slot
	_       uint32           // 28
	_       [4]uint64        // 32
	name    [8]atomic.Uint64 // 64, NUL-padded bytes
}

// Compile-time layout checks.
var (
	_ [headerSize - unsafe.Sizeof(header{})]byte
	_ [unsafe.Sizeof(header{}) - headerSize]byte
	_ [slotSize - unsafe.Sizeof(slot{})]byte
	_ [unsafe.Sizeof(slot{}) - slotSize]byte
	_ [unsafe.Offsetof(header{}.starts) % 8]byte
	_ [unsafe.Offsetof(slot{}.name) - 64]byte
)

// Table is a mapped heart table. The parent creates it with Create; the
// child maps the same memory with Open or OpenFromEnv. The methods of a nil
// *Table that the child uses are no-ops, so code that runs unsupervised can
// keep a nil table.
type Table struct {
	mem    []byte
	hdr    *header
	base   unsafe.Pointer
	slots  int
	stride uintptr

	// resets counts Reset calls on the parent's side; the parent trusts it
	// over the start count in shared memory, which the child could change.
	resets atomic.Uint64

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool
}

// Create makes a new table of the given number of slots in a sealed memfd
// and maps it shared. The returned file is what the parent passes to the
// child (in exec.Cmd.ExtraFiles, its number in EnvFD); the caller owns it
// and closes it once no child will be started again. All slots are free and
// the start count is 0.
func Create(slots int) (*Table, *os.File, error) {
	if slots < 1 || slots > MaxSlots {
		return nil, nil, fmt.Errorf("hearts: create: slot count %d outside [1, %d]", slots, MaxSlots)
	}
	size := tableSize(slots)
	fd, err := unix.MemfdCreate("mtev-hearts", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, nil, fmt.Errorf("hearts: create: memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "mtev-hearts")
	fail := func(op string, err error) (*Table, *os.File, error) {
		f.Close()
		return nil, nil, fmt.Errorf("hearts: create: %s: %w", op, err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return fail("truncate", err)
	}
	// The child must not be able to shrink the file under the parent's
	// mapping (the parent would take SIGBUS on its next read).
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		return fail("seal", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap", err)
	}
	t := newTable(mem, slots, slotSize)
	h := t.hdr
	h.magic = magic
	h.major = LayoutMajor
	h.minor = LayoutMinor
	h.slots = uint32(slots)
	h.slotSize = slotSize
	h.slotsOff = headerSize
	return t, f, nil
}

func tableSize(slots int) int {
	n := headerSize + slots*slotSize
	pg := os.Getpagesize()
	return (n + pg - 1) / pg * pg
}

func newTable(mem []byte, slots int, stride uintptr) *Table {
	base := unsafe.Pointer(unsafe.SliceData(mem))
	return &Table{
		mem:    mem,
		hdr:    (*header)(base),
		base:   unsafe.Add(base, headerSize),
		slots:  slots,
		stride: stride,
	}
}

// Open maps the table in f, checking its header. It does not take ownership
// of f: the mapping stays valid after f is closed.
func Open(f *os.File) (*Table, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("hearts: open: stat: %w", err)
	}
	if st.Size < headerSize || st.Size > int64(tableSize(MaxSlots))+int64(os.Getpagesize()) {
		return nil, fmt.Errorf("hearts: open: %w: size %d bytes", ErrFormat, st.Size)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("hearts: open: mmap: %w", err)
	}
	slots, stride, err := checkHeader(mem)
	if err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("hearts: open: %w", err)
	}
	return newTable(mem, slots, stride), nil
}

// checkHeader validates the header at the start of mem, which must be the
// whole table, and returns the slot count and stride.
func checkHeader(mem []byte) (slots int, stride uintptr, err error) {
	if len(mem) < headerSize {
		return 0, 0, fmt.Errorf("%w: %d bytes, the header alone is %d", ErrFormat, len(mem), headerSize)
	}
	h := (*header)(unsafe.Pointer(unsafe.SliceData(mem)))
	if h.magic != magic {
		return 0, 0, fmt.Errorf("%w: bad magic %#x", ErrFormat, h.magic)
	}
	if h.major != LayoutMajor {
		return 0, 0, fmt.Errorf("%w: table has layout %d.%d, this build reads %d.x", ErrVersion, h.major, h.minor, LayoutMajor)
	}
	switch {
	case h.slots < 1 || h.slots > MaxSlots:
		return 0, 0, fmt.Errorf("%w: slot count %d outside [1, %d]", ErrFormat, h.slots, MaxSlots)
	case h.slotSize < slotSize || h.slotSize%cacheLine != 0:
		return 0, 0, fmt.Errorf("%w: slot size %d (want a multiple of %d, at least %d)", ErrFormat, h.slotSize, cacheLine, slotSize)
	case h.slotsOff != headerSize:
		return 0, 0, fmt.Errorf("%w: slots at offset %d, want %d", ErrFormat, h.slotsOff, headerSize)
	case uint64(h.slotsOff)+uint64(h.slots)*uint64(h.slotSize) > uint64(len(mem)):
		return 0, 0, fmt.Errorf("%w: %d slots of %d bytes do not fit in %d bytes", ErrFormat, h.slots, h.slotSize, len(mem))
	}
	return int(h.slots), uintptr(h.slotSize), nil
}

var fromEnv struct {
	once sync.Once
	t    *Table
	err  error
}

// OpenFromEnv opens the table whose descriptor number is in EnvFD and closes
// that descriptor (the mapping stays). It returns ErrNotSupervised when EnvFD
// is unset. The descriptor is consumed once: later calls return the result
// of the first.
func OpenFromEnv() (*Table, error) {
	fromEnv.once.Do(func() {
		fromEnv.t, fromEnv.err = openEnv(os.Getenv(EnvFD))
	})
	return fromEnv.t, fromEnv.err
}

func openEnv(v string) (*Table, error) {
	if v == "" {
		return nil, fmt.Errorf("hearts: open: %w: %s is unset", ErrNotSupervised, EnvFD)
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("hearts: open: %s=%q is not a descriptor number above 2", EnvFD, v)
	}
	f := os.NewFile(uintptr(fd), "mtev-hearts")
	defer f.Close()
	return Open(f)
}

// Close unmaps the table. Every Heart of the table must be out of use: a
// Beat after Close faults. Close is idempotent.
func (t *Table) Close() error {
	if t == nil {
		return nil
	}
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		if err := unix.Munmap(t.mem); err != nil {
			t.closeErr = fmt.Errorf("hearts: close: %w", err)
		}
	})
	return t.closeErr
}

// Slots returns the number of slots.
func (t *Table) Slots() int {
	if t == nil {
		return 0
	}
	return t.slots
}

func (t *Table) slot(i int) *slot {
	return (*slot)(unsafe.Add(t.base, uintptr(i)*t.stride))
}

// Reset prepares the table for the next child: every slot is freed and
// zeroed, the ready and disable-all flags are cleared, and the start count
// is incremented. The parent calls it before every start but the first,
// only when no child has the table mapped.
func (t *Table) Reset() error {
	if t.closed.Load() {
		return fmt.Errorf("hearts: reset: %w", ErrClosed)
	}
	for i := range t.slots {
		s := t.slot(i)
		if s.state.Load() == stateFree && s.gen.Load() == 0 && s.ticker.Load() == 0 {
			// Never claimed since the last reset (a claim leaves gen
			// non-zero): already clear. Skipping it keeps a restart fast,
			// as every store here is a locked instruction.
			continue
		}
		s.state.Store(stateFree)
		s.ticker.Store(0)
		s.timeout.Store(0)
		s.tid.Store(0)
		s.gen.Store(0)
		for w := range s.name {
			s.name[w].Store(0)
		}
	}
	t.hdr.ready.Store(0)
	t.hdr.allOff.Store(0)
	t.hdr.starts.Store(t.resets.Add(1))
	return nil
}

// StartCount returns how many times the child was started before the
// current one: the first child sees 0.
func (t *Table) StartCount() uint64 {
	if t == nil {
		return 0
	}
	return t.hdr.starts.Load()
}

// Ready declares, from the child, that start-up is complete.
func (t *Table) Ready() {
	if t == nil {
		return
	}
	t.hdr.ready.Store(1)
}

// IsReady reports whether the child has declared readiness.
func (t *Table) IsReady() bool {
	return t != nil && t.hdr.ready.Load() != 0
}

// DisableAll suspends every deadline, of present and future hearts, until
// EnableAll: for long start-up or shutdown work that cannot beat. While it is
// in effect nothing is reported, so a hang then goes unnoticed.
func (t *Table) DisableAll() {
	if t == nil {
		return
	}
	t.hdr.allOff.Store(1)
}

// EnableAll ends DisableAll. Every deadline restarts from the moment the
// parent sees the change.
func (t *Table) EnableAll() {
	if t == nil {
		return
	}
	t.hdr.allOff.Store(0)
}

// AllDisabled reports whether DisableAll is in effect.
func (t *Table) AllDisabled() bool {
	return t != nil && t.hdr.allOff.Load() != 0
}
