package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// On-disk format constants. doc.go describes the layout they define.
const (
	// FormatMajor is the segment format major version this package writes.
	// A reader refuses a segment with a larger major version.
	FormatMajor = 1
	// FormatMinor is the segment format minor version this package writes.
	// Minor versions only add header fields; readers accept any minor.
	FormatMinor = 0

	// MaxRecordBytes is the largest record Append accepts.
	MaxRecordBytes = 64 << 20

	segMagic      = "MTEVJRNL"
	headerSize    = 36 // size of a version 1.0 segment header
	maxHeaderSize = 4096
	frameHead     = 20 // length, seq, time
	frameOverhead = frameHead + 4
	segSuffix     = ".seg"
	segNameDigits = 20
	lockName      = "lock"
	tempPrefix    = ".seg-" // segments being created
)

// Damage kinds.
const (
	// DamageTornTail is an incomplete frame at the end of a segment, left by
	// a crash or power cut in the middle of an append.
	DamageTornTail = "torn-tail"
	// DamageChecksum is a complete frame whose CRC-32C does not match.
	DamageChecksum = "checksum"
	// DamageFrame is a span that does not parse as a frame (impossible
	// length or sequence number).
	DamageFrame = "bad-frame"
	// DamageHeader is a segment header that is short, has the wrong magic,
	// a bad checksum, or a first sequence number that disagrees with the
	// file name. The records after it are still read.
	DamageHeader = "bad-header"
	// DamageTruncated is a segment that ends before records it held: the
	// next segment, or the journal's high-water mark, starts past its last
	// record (a file truncated at a frame boundary, or exactly at its
	// header's end). Bytes is 0: what is missing is gone.
	DamageTruncated = "truncated"
)

// Errors returned by this package. Compare with errors.Is.
var (
	// ErrNewerVersion means a segment was written in a newer, incompatible
	// major format version; the message names both versions.
	ErrNewerVersion = errors.New("journal: segment format version is newer than supported")
	// ErrTooLarge means a record exceeds MaxRecordBytes.
	ErrTooLarge = errors.New("journal: record too large")
	// ErrClosed means the Writer or Reader was used after Close.
	ErrClosed = errors.New("journal: closed")
	// ErrNotJournal means a directory holds neither a journal lock file nor
	// any segment.
	ErrNotJournal = errors.New("journal: not a journal directory")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segName returns the file name of the segment whose first record has seq.
func segName(first uint64) string {
	return fmt.Sprintf("%0*d%s", segNameDigits, first, segSuffix)
}

// parseSegName returns the first sequence number encoded in a segment file
// name, or false if name is not a segment name.
func parseSegName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(digits) != segNameDigits {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// header is the decoded fixed part of a segment header.
type header struct {
	major, minor uint16
	size         int64 // header length in bytes; frames start here
	first        uint64
	created      int64 // unix nanoseconds
}

func encodeHeader(first uint64, created int64) []byte {
	b := make([]byte, headerSize)
	copy(b, segMagic)
	binary.LittleEndian.PutUint16(b[8:], FormatMajor)
	binary.LittleEndian.PutUint16(b[10:], FormatMinor)
	binary.LittleEndian.PutUint32(b[12:], headerSize)
	binary.LittleEndian.PutUint64(b[16:], first)
	binary.LittleEndian.PutUint64(b[24:], uint64(created))
	binary.LittleEndian.PutUint32(b[32:], crc32.Checksum(b[:32], castagnoli))
	return b
}

// errBadHeader is the internal signal for DamageHeader.
var errBadHeader = errors.New("bad segment header")

// decodeHeader parses a segment header from the start of b (which holds at
// most maxHeaderSize bytes of the file). It returns ErrNewerVersion (wrapped,
// naming both versions) for a newer major version and errBadHeader for
// anything else that is wrong.
func decodeHeader(b []byte) (header, error) {
	var h header
	if len(b) < 12 || string(b[:8]) != segMagic {
		return h, errBadHeader
	}
	h.major = binary.LittleEndian.Uint16(b[8:])
	h.minor = binary.LittleEndian.Uint16(b[10:])
	if h.major > FormatMajor {
		return h, fmt.Errorf("%w: segment is version %d.%d, this build reads %d.x",
			ErrNewerVersion, h.major, h.minor, FormatMajor)
	}
	if h.major < 1 || len(b) < headerSize {
		return h, errBadHeader
	}
	h.size = int64(binary.LittleEndian.Uint32(b[12:]))
	if h.size < headerSize || h.size > maxHeaderSize || int64(len(b)) < h.size {
		return h, errBadHeader
	}
	sum := binary.LittleEndian.Uint32(b[h.size-4:])
	if crc32.Checksum(b[:h.size-4], castagnoli) != sum {
		return h, errBadHeader
	}
	h.first = binary.LittleEndian.Uint64(b[16:])
	h.created = int64(binary.LittleEndian.Uint64(b[24:]))
	return h, nil
}

// appendFrame appends the frame for one record to dst.
func appendFrame(dst []byte, seq uint64, nanos int64, data []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(data)))
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(nanos))
	dst = append(dst, data...)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}
