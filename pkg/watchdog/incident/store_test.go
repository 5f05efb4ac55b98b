package incident

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/journal"
	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

func rec(pid int) *trace.Record {
	return &trace.Record{Service: "svc", PID: pid, Reason: trace.ReasonExit, Time: time.Unix(1700000000, int64(pid))}
}

func TestAppendReadFind(t *testing.T) {
	dir := t.TempDir()
	if recs, err := ReadAll(dir); err != nil || len(recs) != 0 {
		t.Fatalf("empty state: %v, %v", recs, err)
	}
	if _, err := NewReader(dir); !errors.Is(err, ErrNoJournal) {
		t.Fatalf("NewReader of an empty state: %v, want ErrNoJournal", err)
	}
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := ReadAll(dir); err != nil || len(recs) != 0 {
		t.Fatalf("a journal with no record: %v, %v", recs, err)
	}
	for pid := 1; pid <= 3; pid++ {
		r := rec(pid)
		id, err := s.Append(r)
		if err != nil || id != uint64(pid) || r.ID != string(rune('0'+pid)) {
			t.Fatalf("Append %d: id %d (%q), %v", pid, id, r.ID, err)
		}
	}
	// A record of a newer major schema is kept in the journal but cannot
	// be decoded: readers skip it and say so.
	if _, err := s.j.Append([]byte(`{"schema":"99.0"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.Dir(rec(7)); got != filepath.Join(dir, "artifacts", "svc-7-1700000000000000007") {
		t.Fatalf("Dir: %s", got)
	}

	r, err := NewReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	var skipped []error
	recs, err := r.ReadAll(func(err error) { skipped = append(skipped, err) })
	r.Close()
	if err != nil || len(recs) != 3 || recs[2].ID != "3" || recs[2].PID != 3 {
		t.Fatalf("ReadAll: %d records, %v", len(recs), err)
	}
	if len(skipped) != 1 || !errors.Is(skipped[0], ErrUndecodable) || !errors.Is(skipped[0], trace.ErrNewerSchema) {
		t.Fatalf("skipped: %v", skipped)
	}

	r, _ = NewReader(dir)
	got, found, err := r.Find(2)
	r.Close()
	if err != nil || !found || got.ID != "2" || got.PID != 2 {
		t.Fatalf("Find 2: %+v %v %v", got, found, err)
	}
	r, _ = NewReader(dir)
	_, found, err = r.Find(9)
	r.Close()
	if err != nil || found {
		t.Fatalf("Find 9: found %v, %v", found, err)
	}
	r, _ = NewReader(dir)
	_, found, err = r.Find(0)
	r.Close()
	if !found || !errors.Is(err, ErrUndecodable) {
		t.Fatalf("Find latest (undecodable): found %v, %v", found, err)
	}
}

// Follow delivers the records there and then new ones as they are
// appended by another writer.
func TestFollow(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Append(rec(1))
	r, err := NewReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ids []string
	err = r.Follow(ctx, func(got *trace.Record) error {
		ids = append(ids, got.ID)
		if len(ids) == 1 {
			s.Append(rec(2))
		}
		if len(ids) == 2 {
			return errStop
		}
		return nil
	}, nil)
	if !errors.Is(err, errStop) || strings.Join(ids, ",") != "1,2" {
		t.Fatalf("Follow: %v, ids %v", err, ids)
	}
}

var errStop = errors.New("stop")

// A journal directory that holds something else is an error, not "no
// incidents".
func TestNotAJournal(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(JournalDir(dir), 0o700)
	os.WriteFile(filepath.Join(JournalDir(dir), "stray"), []byte("x"), 0o600)
	_, err := NewReader(dir)
	if err == nil || errors.Is(err, ErrNoJournal) || !errors.Is(err, journal.ErrNotJournal) {
		t.Fatalf("NewReader: %v", err)
	}
}
