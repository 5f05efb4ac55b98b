package trace

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/maruel/panicparse/v2/stack"
)

// manyDump runs testdata/crashers/many with n goroutines and returns its
// GOTRACEBACK=all output.
func manyDump(tb testing.TB, n int) []byte {
	tb.Helper()
	cmd := exec.Command(crasher(tb, "many"))
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all", "MANY_N="+strconv.Itoa(n))
	cmd.Dir = tb.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		tb.Fatal("many exited 0")
	}
	return stderr.Bytes()
}

// TestParseCrashLarge parses a real dump of 10,000 goroutines and groups it.
func TestParseCrashLarge(t *testing.T) {
	out := manyDump(t, 10000)
	gs, c, err := ParseCrash(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) < 10001 {
		t.Fatalf("%d goroutines, want at least 10001", len(gs))
	}
	if f, _ := CulpritFrame(&gs[c]); f.Function != "main.main" || gs[c].ID != 1 {
		t.Errorf("culprit %d in %s", gs[c].ID, f.Function)
	}
	bs := Buckets(gs)
	total := 0
	for _, b := range bs {
		total += b.Count()
	}
	if total != len(gs) || len(bs) > 20 || !bs[0].Culprit {
		t.Errorf("%d buckets holding %d of %d goroutines", len(bs), total, len(gs))
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, &Record{Reason: ReasonCrash, Goroutines: gs, CrashOutput: string(out)}, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "2000 goroutines [chan receive]") {
		t.Errorf("text view lacks the bucket of 2000 receivers:\n%s", buf.String())
	}
}

// BenchmarkParseDump: ParseCrash against panicparse's own scan of the
// same real 10,000-goroutine dump (the conversion and culprit search are
// the difference).
func BenchmarkParseDump(b *testing.B) {
	out := manyDump(b, 10000)
	b.Run("base-panicparse-scan", func(b *testing.B) {
		b.SetBytes(int64(len(out)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := stack.ScanSnapshot(bytes.NewReader(out), io.Discard, &stack.Opts{}); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
	})
	b.Run("parsecrash", func(b *testing.B) {
		b.SetBytes(int64(len(out)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := ParseCrash(out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGroup: Buckets against panicparse's aggregation of the same
// 10,000 goroutines.
func BenchmarkGroup(b *testing.B) {
	out := manyDump(b, 10000)
	gs, _, err := ParseCrash(out)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("base-panicparse-aggregate", func(b *testing.B) {
		snap, _, err := stack.ScanSnapshot(bytes.NewReader(out), io.Discard, &stack.Opts{})
		if err != nil && err != io.EOF {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			_ = snap.Aggregate(stack.AnyPointer)
		}
	})
	b.Run("buckets", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = Buckets(gs)
		}
	})
}

// BenchmarkShow: the whole `traces show` path for a crash record of
// 10,000 goroutines: fingerprint and text view.
func BenchmarkShow(b *testing.B) {
	out := manyDump(b, 10000)
	gs, _, err := ParseCrash(out)
	if err != nil {
		b.Fatal(err)
	}
	rec := &Record{Reason: ReasonCrash, Goroutines: gs, CrashOutput: string(out)}
	b.Run("fingerprint", func(b *testing.B) {
		for b.Loop() {
			_ = Fingerprint(rec)
		}
	})
	b.Run("writetext", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := WriteText(io.Discard, rec, TextOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
