package log

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/internal/syncbuf"
	"github.com/mtev-supervise/mtev-supervise/pkg/journal"
)

func TestJournalOutlet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	g := New(WithStderr(&syncbuf.Buffer{}))
	err := g.Configure(
		Spec{Name: "j", Type: "journal", Path: dir, Format: FormatJSON, Journal: JournalOptions{SegmentBytes: 4096}},
		Spec{Name: "app", Outlets: []string{"j"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Sink("j").(*Journal); !ok {
		t.Fatalf("sink is %T", g.Sink("j"))
	}
	const n = 300
	f := g.Facility("app")
	for i := range n {
		f.Log().Int("i", i).Msg("entry")
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := journal.NewReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Read from a cursor in the middle.
	if err := r.Seek(101); err != nil {
		t.Fatal(err)
	}
	want := 100
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var m struct{ I int }
		if err := json.Unmarshal(e.Data, &m); err != nil {
			t.Fatalf("record %d: %q: %v", e.Seq, e.Data, err)
		}
		if m.I != want || e.Seq != uint64(want+1) {
			t.Fatalf("record seq %d holds %d, want seq %d holding %d", e.Seq, m.I, want+1, want)
		}
		want++
	}
	if want != n {
		t.Errorf("read up to %d, want %d", want, n)
	}
}

func TestJournalBadPath(t *testing.T) {
	g := New(WithStderr(&syncbuf.Buffer{}))
	defer g.Close()
	file := filepath.Join(t.TempDir(), "f")
	if err := writeFile(file); err != nil {
		t.Fatal(err)
	}
	err := g.Configure(Spec{Name: "j", Type: "journal", Path: filepath.Join(file, "sub")})
	if err == nil {
		t.Fatal("journal under a regular file accepted")
	}
	if err := g.Configure(Spec{Name: "j", Type: "journal"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty path: %v", err)
	}
}

func writeFile(path string) error { return os.WriteFile(path, []byte("x"), 0o644) }
