package journal

import (
	"encoding/binary"
	"hash/crc32"
	"os"
)

// The high-water mark: the lock file holds the sequence number of the
// newest record ever handed out, so that a number is never handed out
// twice, even when the records that carried it were lost (a tail cut by a
// crash, a file truncated by hand), and so that a segment that ends before
// records it held is seen as damaged.
//
// Layout, at offset 0 of the lock file (20 bytes, little-endian):
//
//	offset size  field
//	0      8     magic "MTEVMARK"
//	8      8     sequence number of the newest record handed out
//	16     4     CRC-32C of bytes [0, 16)
//
// An empty file (a journal written before the mark existed) or a damaged
// mark reads as 0: no mark. The mark is written after each record's frame,
// with the directory locked, and not synced on its own: a power cut may
// lose it along with the newest records, whose numbers may then be handed
// out again.
const (
	markMagic = "MTEVMARK"
	markSize  = 20
)

// readMark returns the high-water mark held by the lock file f, or 0.
func readMark(f *os.File) uint64 {
	if f == nil {
		return 0
	}
	b := make([]byte, markSize)
	if n, _ := f.ReadAt(b, 0); n < markSize || string(b[:8]) != markMagic {
		return 0
	}
	if crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:]) {
		return 0
	}
	return binary.LittleEndian.Uint64(b[8:16])
}

// writeMark records seq as the high-water mark in the lock file f.
func writeMark(f *os.File, seq uint64) error {
	b := make([]byte, 0, markSize)
	b = append(b, markMagic...)
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	_, err := f.WriteAt(b, 0)
	return err
}
