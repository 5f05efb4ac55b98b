package hearts

import (
	"testing"
	"unsafe"
)

// FuzzCheckHeader feeds arbitrary bytes to the header check that Open runs
// on a file handed over by another process.
func FuzzCheckHeader(f *testing.F) {
	tbl, file, err := Create(16)
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	defer tbl.Close()
	f.Add(append([]byte(nil), tbl.mem...))
	f.Add(append([]byte(nil), tbl.mem[:headerSize]...))
	tbl.hdr.major = 2
	f.Add(append([]byte(nil), tbl.mem...))
	f.Add([]byte{})
	f.Add([]byte("MTHRT1\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// The mapping is page aligned; give the check an 8-aligned copy.
		words := make([]uint64, (len(b)+7)/8)
		mem := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), len(words)*8)[:len(b)]
		copy(mem, b)
		slots, stride, err := checkHeader(mem)
		if err != nil {
			return
		}
		if slots < 1 || stride < slotSize || stride%cacheLine != 0 || headerSize+uintptr(slots)*stride > uintptr(len(mem)) {
			t.Fatalf("accepted %d slots of %d bytes in %d bytes", slots, stride, len(mem))
		}
		tb := newTable(mem, slots, stride)
		for i := range slots {
			tb.read(i)
		}
	})
}
