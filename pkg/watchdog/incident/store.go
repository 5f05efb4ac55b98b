package incident

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/mtev-supervise/mtev-supervise/pkg/journal"
	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// JournalDir is the incident journal of a state directory.
func JournalDir(stateDir string) string { return filepath.Join(stateDir, "journal") }

// ArtifactDir holds the files kept with records (large crash dumps,
// profiles, cores).
func ArtifactDir(stateDir string) string { return filepath.Join(stateDir, "artifacts") }

// Dir is the one name of a record's artifact directory under artifactDir:
// <service>-<pid>-<record time in ns>.
func Dir(artifactDir string, rec *trace.Record) string {
	return filepath.Join(artifactDir, fmt.Sprintf("%s-%d-%d", rec.Service, rec.PID, rec.Time.UnixNano()))
}

// ErrNoJournal is returned by NewReader when nothing was recorded yet in
// the state directory (no journal, or an empty one).
var ErrNoJournal = errors.New("incident: no incidents recorded")

// Appender stores encoded records; *journal.Writer is one.
type Appender interface {
	Append(data []byte) (seq uint64, err error)
	Close() error
}

// Store is the writing side: the journal and the artifact directories of
// one state directory.
type Store struct {
	stateDir string
	j        Appender
}

// Options of Open.
type Options = journal.Options

// Open opens (creating it if needed) the journal of stateDir.
func Open(stateDir string, opts Options) (*Store, error) {
	j, err := journal.Open(JournalDir(stateDir), opts)
	if err != nil {
		return nil, err
	}
	return &Store{stateDir: stateDir, j: j}, nil
}

// NewStore makes a Store over an Appender of the caller's.
func NewStore(stateDir string, j Appender) *Store { return &Store{stateDir: stateDir, j: j} }

// ArtifactDir is the Store's artifact directory.
func (s *Store) ArtifactDir() string { return ArtifactDir(s.stateDir) }

// Dir is rec's artifact directory.
func (s *Store) Dir(rec *trace.Record) string { return Dir(s.ArtifactDir(), rec) }

// Append encodes rec, appends it and sets rec.ID to its sequence number.
// An error with a non-zero id means the record was stored but something
// after it failed (retention).
func (s *Store) Append(rec *trace.Record) (uint64, error) {
	data, err := trace.Encode(rec)
	if err != nil {
		return 0, fmt.Errorf("incident: encode: %w", err)
	}
	seq, err := s.j.Append(data)
	if seq != 0 {
		rec.ID = strconv.FormatUint(seq, 10)
	}
	return seq, err
}

// Close closes the journal.
func (s *Store) Close() error { return s.j.Close() }

// Reader reads the records of a state directory in order.
type Reader struct {
	r *journal.Reader
}

// NewReader opens the journal of stateDir for reading. It returns an
// error wrapping ErrNoJournal when nothing was recorded yet.
func NewReader(stateDir string) (*Reader, error) {
	dir := JournalDir(stateDir)
	r, err := journal.NewReader(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrNoJournal, stateDir)
	}
	if errors.Is(err, journal.ErrNotJournal) {
		// An empty directory: the supervisor created it and has not
		// recorded anything yet.
		if ents, rerr := os.ReadDir(dir); rerr == nil && len(ents) == 0 {
			return nil, fmt.Errorf("%w in %s", ErrNoJournal, stateDir)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("incident: %w", err)
	}
	return &Reader{r: r}, nil
}

// Decode decodes a journal entry into a record whose ID is the entry's
// sequence number.
func Decode(e journal.Entry) (*trace.Record, error) {
	id := strconv.FormatUint(e.Seq, 10)
	rec, err := trace.Decode(e.Data)
	if err != nil {
		return nil, fmt.Errorf("incident %s: %w", id, err)
	}
	rec.ID = id
	return rec, nil
}

// ErrUndecodable is matched (errors.Is) by the error of a record that
// could not be decoded; reading can go on past it.
var ErrUndecodable = errors.New("incident: undecodable record")

// undecodable is the error of a record that could not be decoded: its
// message is the decoder's ("incident N: ..."), and it matches
// ErrUndecodable.
type undecodable struct{ err error }

func (u undecodable) Error() string        { return u.err.Error() }
func (u undecodable) Unwrap() error        { return u.err }
func (u undecodable) Is(target error) bool { return target == ErrUndecodable }

// Next returns the next record, io.EOF at the end, or an error wrapping
// ErrUndecodable for a record that cannot be decoded (reading can go on).
func (r *Reader) Next() (*trace.Record, error) {
	e, err := r.r.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("incident: read journal: %w", err)
	}
	rec, err := Decode(e)
	if err != nil {
		return nil, undecodable{err}
	}
	return rec, nil
}

// ReadAll reads every record from the position on. skip, if not nil, is
// told about each record that could not be decoded.
func (r *Reader) ReadAll(skip func(error)) ([]*trace.Record, error) {
	var recs []*trace.Record
	for {
		rec, err := r.Next()
		switch {
		case errors.Is(err, io.EOF):
			return recs, nil
		case errors.Is(err, ErrUndecodable):
			if skip != nil {
				skip(err)
			}
		case err != nil:
			return recs, err
		default:
			recs = append(recs, rec)
		}
	}
}

// Seek positions the reader at the record with ID id (or the first after
// it, when it is gone).
func (r *Reader) Seek(id uint64) error { return r.r.Seek(id) }

// Find returns the record with ID id, or the last record when id is 0;
// found is false when there is none. The record found is decoded; an
// error wrapping ErrUndecodable says it cannot be.
func (r *Reader) Find(id uint64) (rec *trace.Record, found bool, err error) {
	if id > 0 {
		if err := r.r.Seek(id); err != nil {
			return nil, false, fmt.Errorf("incident: read journal: %w", err)
		}
	}
	var last journal.Entry
	for {
		e, err := r.r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("incident: read journal: %w", err)
		}
		last, found = e, true
		if id > 0 {
			break
		}
	}
	if !found || (id > 0 && last.Seq != id) {
		return nil, false, nil
	}
	rec, err = Decode(last)
	if err != nil {
		return nil, true, undecodable{err}
	}
	return rec, true, nil
}

// Follow calls fn for every record from the position on, then for every
// new one as it is appended, until ctx is done (ctx.Err()) or fn returns
// an error. skip is told about records that cannot be decoded.
func (r *Reader) Follow(ctx context.Context, fn func(*trace.Record) error, skip func(error)) error {
	return r.r.Follow(ctx, func(e journal.Entry) error {
		rec, err := Decode(e)
		if err != nil {
			if skip != nil {
				skip(undecodable{err})
			}
			return nil
		}
		return fn(rec)
	})
}

// Damage lists the journal damage the reader skipped so far.
func (r *Reader) Damage() []journal.Damage { return r.r.Damage() }

// Close closes the reader.
func (r *Reader) Close() error { return r.r.Close() }

// ReadAll reads every record of stateDir (none when nothing was
// recorded), skipping undecodable ones.
func ReadAll(stateDir string) ([]*trace.Record, error) {
	r, err := NewReader(stateDir)
	if errors.Is(err, ErrNoJournal) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.ReadAll(nil)
}
