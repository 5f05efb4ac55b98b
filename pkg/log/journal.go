package log

import (
	"bytes"
	"fmt"

	"github.com/mtev-supervise/mtev-supervise/pkg/journal"
)

// Journal writes each line, without its trailing newline, as one record
// of a pkg/journal directory, readable with journal.NewReader or
// journal.Follow from any sequence number.
type Journal struct {
	dir string
	w   *journal.Writer
}

func openJournal(s *Spec, env Env) (Sink, error) {
	if s.Path == "" {
		return nil, fmt.Errorf("log: open journal: path (a directory) is empty: %w", ErrInvalid)
	}
	o := s.Journal
	w, err := journal.Open(s.Path, journal.Options{
		SegmentBytes: o.SegmentBytes,
		MaxBytes:     o.MaxBytes,
		MaxAge:       o.MaxAge,
		NoSync:       !o.Sync,
		Now:          env.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("log: open journal: %w", err)
	}
	return &Journal{dir: s.Path, w: w}, nil
}

func init() {
	Register("journal", Type{Open: openJournal, Async: true})
}

// Dir returns the journal directory.
func (j *Journal) Dir() string { return j.dir }

// WriteLine appends line as one record.
func (j *Journal) WriteLine(line []byte) error {
	if _, err := j.w.Append(bytes.TrimSuffix(line, []byte{'\n'})); err != nil {
		return fmt.Errorf("log: journal %s: %w", j.dir, err)
	}
	return nil
}

// Close closes the journal writer.
func (j *Journal) Close() error {
	if err := j.w.Close(); err != nil {
		return fmt.Errorf("log: journal %s: %w", j.dir, err)
	}
	return nil
}
