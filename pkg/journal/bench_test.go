package journal

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkAppend measures appending 1 KiB records, with and without
// fdatasync per record, beside plain writes of the same bytes to one file
// (fdatasync after each for the "-fsync" baseline).
func BenchmarkAppend(b *testing.B) {
	rec := record(0, 1024)
	for _, bc := range []struct {
		name   string
		noSync bool
	}{
		{"journal-sync", false},
		{"journal-nosync", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w, err := Open(b.TempDir(), Options{NoSync: bc.noSync})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.Append(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, bc := range []struct {
		name string
		sync bool
	}{
		{"base-write-fsync", true},
		{"base-write", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "plain"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			var size int64
			for b.Loop() {
				if _, err := f.Write(rec); err != nil {
					b.Fatal(err)
				}
				if bc.sync {
					if err := fdatasync(f); err != nil {
						b.Fatal(err)
					}
				}
				// Start over now and then, as the journal's retention does,
				// so long runs do not fill the disk.
				if size += int64(len(rec)); size >= DefaultMaxBytes {
					if err := f.Truncate(0); err != nil {
						b.Fatal(err)
					}
					size = 0
				}
			}
		})
	}
}
