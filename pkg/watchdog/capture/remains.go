package capture

import (
	"sort"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// Remains is what a dead child left for its record: its fatal output and
// the core file the kernel wrote.
type Remains struct {
	// Crash is the fatal output, if any; CrashFrom says where it came
	// from: CrashOutput (the memfd the child's runtime wrote) or
	// trace.MethodStderr (its standard error).
	Crash     []byte
	CrashFrom trace.Method
	// Core is the core file, already kept next to the record; Exe the
	// child's executable, to read it with. Empty when there is none.
	Core, Exe string
	// Dir is the incident's artifact directory.
	Dir string
}

// Reader reads a dead child's remains into its record: the goroutines of
// its fatal output, or of its core file. It records its own outcome in
// rec.Capture (method, error, attempt), as a Method does.
type Reader interface {
	// Name is the reader's method name in the record.
	Name() trace.Method
	// Applies says whether the reader runs, given whether an earlier
	// reader already found goroutines.
	Applies(r *Remains, rec *trace.Record, found bool) bool
	// Read fills rec (goroutines through Store or StoreBlameless).
	Read(r *Remains, rec *trace.Record)
}

type readerEntry struct {
	order int
	r     Reader
}

var readers []readerEntry // guarded by mu

// RegisterReader adds r to the readers of remains at order (lower first).
// The supervisor registers the reader of fatal output (order 10); package
// trace/delve the reader of core files (order 20).
func RegisterReader(order int, r Reader) {
	mu.Lock()
	defer mu.Unlock()
	readers = append(readers, readerEntry{order, r})
	sort.SliceStable(readers, func(i, j int) bool { return readers[i].order < readers[j].order })
}

// Readers returns the registered readers in order.
func Readers() []Reader {
	mu.Lock()
	defer mu.Unlock()
	out := make([]Reader, len(readers))
	for i, e := range readers {
		out[i] = e.r
	}
	return out
}

// ReadRemains runs every reader that applies, in order.
func ReadRemains(r *Remains, rec *trace.Record) {
	for _, rd := range Readers() {
		if rd.Applies(r, rec, len(rec.Goroutines) > 0) {
			rd.Read(r, rec)
		}
	}
}
