// Package journal is an append-only, checksummed segment journal. The
// supervisor appends one record (a JSON incident) per child death or stall;
// the CLI lists, shows and follows them; the logging package uses it as an
// outlet.
//
// # Contract
//
// A Writer appends records; each gets a sequence number that starts at 1,
// grows by one per record, is never handed out twice, and is unique across
// every Writer of the directory, in this process or another: appends are
// serialized by flock(2) on the lock file, held only for the duration of one
// append. Writer methods are safe for concurrent use. Unless Options.NoSync
// is set, Append returns after fdatasync(2), so it blocks on the disk: do not
// call it from an event loop that must not block.
//
// A Reader reads in sequence order without taking the lock. It tolerates
// concurrent appends, damaged bytes (skipped and reported through Damage,
// never failing the read) and segments removed by retention while it reads.
// A Reader is for one goroutine. Follow and Reader.Follow block until their
// context is done; they call fn on the calling goroutine and start one
// helper goroutine (a context.AfterFunc) that they wait for before
// returning.
//
// Retention runs inside Append, after the record is written: the oldest
// whole segments are removed while all segments together exceed
// Options.MaxBytes or while the newest record of the oldest segment is older
// than Options.MaxAge. The segment being written is never removed, which is
// also what keeps the sequence counter: it is derived from the newest
// segment.
//
// # Directory
//
// The journal directory (mode 0700) holds a lock file named "lock" (mode
// 0600, used for flock, and holding the high-water mark: the newest
// sequence number ever handed out; see mark.go for its 20-byte layout) and
// segment files (mode 0600) named by
// the sequence number of their first record, zero-padded to 20 decimal
// digits, with the suffix ".seg": 00000000000000000001.seg,
// 00000000000000004097.seg, ... Name order is sequence order. A segment is
// created atomically (written to a temporary file whose name starts with
// ".seg-", then renamed), so it always has a complete header. Files whose
// names do not match are ignored; stale temporary files are removed by Open.
//
// Only the newest segment is appended to. A Writer that starts a new segment
// first seals the current one by making it read-only (mode 0400), then
// creates the next; other Writers holding the old segment open notice the
// roll through fstat(2) and rescan the directory. (On a file system that
// ignores mode bits, they look for the segment they would create next
// instead.) If the newest segment is sealed (its Writer died between the two
// steps), the next append starts a new segment.
//
// # Segment format, version 1.0
//
// All integers are little-endian. CRC-32C is the Castagnoli polynomial.
//
// Header (36 bytes in version 1.0):
//
//	offset size  field
//	0      8     magic "MTEVJRNL"
//	8      2     major format version (1)
//	10     2     minor format version (0)
//	12     4     header length H in bytes (36); frames start at offset H
//	16     8     sequence number of the first record (equals the file name)
//	24     8     creation time, Unix nanoseconds
//	H-4    4     CRC-32C of bytes [0, H-4)
//
// A reader refuses a segment whose major version is newer than its own with
// ErrNewerVersion, naming both versions. A newer minor version may only add
// header fields before the checksum (H grows, at most 4096); readers skip
// them. A header that is short, has the wrong magic or checksum, or a first
// sequence number that disagrees with the file name is reported as
// DamageHeader; the frames after offset 36 are still read.
//
// Frames follow the header back to back, one per record (24 bytes plus the
// data):
//
//	offset size  field
//	0      4     data length N (at most MaxRecordBytes, 64 MiB)
//	4      8     sequence number
//	12     8     append time, Unix nanoseconds
//	20     N     record data
//	20+N   4     CRC-32C of bytes [0, 20+N) of the frame
//
// Within a segment the sequence numbers of valid frames increase by one
// (a damaged frame between two valid ones accounts for a gap); the first one
// equals the header's first sequence number.
//
// # Damage and recovery
//
// A frame is valid when its length is at most MaxRecordBytes, it lies
// within the file, its sequence number is larger than that of the previous
// valid frame and not larger than the previous one plus one plus the number
// of 24-byte minimum frames that fit between them, and its checksum matches.
// After an invalid frame, readers resync by searching forward, byte by byte,
// for the next valid frame; the span skipped is reported as DamageChecksum
// (the damaged frame was complete but its checksum failed) or DamageFrame.
// Bytes at the end of a segment that contain no valid frame are a torn tail
// (DamageTornTail) when the frame there is incomplete. In the newest segment
// a reader reports such a tail only when no writer holds the lock, since it
// may be an append in progress.
//
// On Open and before every append, a Writer checks the tail of the newest
// segment. It reports damage through Options.OnDamage, then truncates a tail
// holding no complete frame, so the next record follows the last valid one.
// A complete frame whose checksum fails is kept, and its sequence number is
// not reused. If the length or sequence field of the newest frame is itself
// damaged, the frame cannot be told from a torn one: it is cut. Sequence
// numbers of records lost that way, or cut off whole (a file truncated at a
// frame boundary or at its header's end), are not handed out again: when
// the high-water mark is past the last valid record, the next record starts
// a new segment named after mark+1, and readers report the gap as
// DamageTruncated (in the newest segment, against the mark; in an older
// one, against the next segment's first number). Repairs are reported
// through Options.OnRepair. A newest segment with a damaged header is replaced if it holds
// no valid frame, and otherwise closed for appends (the next record starts a
// new segment).
package journal
