package cht

import (
	"fmt"
	"testing"
)

// BenchmarkLookup: the owner of a key at 10 and 1,000 nodes, beside the
// cost of hashing the key alone.
func BenchmarkLookup(b *testing.B) {
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "check-%d", i)
	}
	b.Run("base-hash", func(b *testing.B) {
		var sink uint32
		for i := 0; b.Loop(); i++ {
			sink += Position(keys[i&1023])
		}
		_ = sink
	})
	for _, n := range []int{10, 1000} {
		r := mustRing(b, names(n))
		b.Run(fmt.Sprintf("nodes-%d", n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				r.Lookup(keys[i&1023])
			}
		})
		b.Run(fmt.Sprintf("lookup3-nodes-%d", n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				r.LookupN(keys[i&1023], 3)
			}
		})
	}
}
