package log

import (
	"bufio"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// countSink counts bytes written, standing for an output that costs
// nothing, so the figures measure the logging path alone.
type countSink struct{ n atomic.Int64 }

func (c *countSink) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

func benchGraph(b *testing.B, specs ...Spec) *Graph {
	b.Helper()
	g := New(WithStderr(&countSink{}))
	if err := g.Configure(specs...); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	return g
}

// BenchmarkLine compares one structured line through a facility with two
// outlets against bare zerolog writing the same fields to the same sink.
func BenchmarkLine(b *testing.B) {
	sink := &countSink{}
	Register("bench-count", Type{Open: func(*Spec, Env) (Sink, error) { return NewWriterSink(sink), nil }})
	b.Run("base-zerolog", func(b *testing.B) {
		zl := zerolog.New(sink).With().Timestamp().Str("facility", "app").Logger()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			zl.Log().Str("k", "value").Int("i", i).Msg("a line of moderate length")
		}
	})
	b.Run("base-zerolog-notime-twice", func(b *testing.B) {
		// The cheapest zerolog line: no timestamp, two sinks.
		zl := zerolog.New(zerolog.MultiLevelWriter(sink, sink)).With().Str("facility", "app").Logger()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			zl.Log().Str("k", "value").Int("i", i).Msg("a line of moderate length")
		}
	})
	b.Run("base-zerolog-twice", func(b *testing.B) {
		zl := zerolog.New(zerolog.MultiLevelWriter(sink, sink)).With().Timestamp().Str("facility", "app").Logger()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			zl.Log().Str("k", "value").Int("i", i).Msg("a line of moderate length")
		}
	})
	for _, tc := range []struct {
		name   string
		second Format
	}{{"facility-2-outlets-json", FormatJSON}, {"facility-2-outlets-json+plain", FormatPlain}} {
		b.Run(tc.name, func(b *testing.B) {
			g := benchGraph(b,
				Spec{Name: "o1", Type: "bench-count", Format: FormatJSON},
				Spec{Name: "o2", Type: "bench-count", Format: tc.second},
				Spec{Name: "app", Outlets: []string{"o1", "o2"}},
			)
			f := g.Facility("app")
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				f.Log().Str("k", "value").Int("i", i).Msg("a line of moderate length")
			}
		})
	}
}

// BenchmarkDisabled is the cost of a line logged to a disabled facility.
func BenchmarkDisabled(b *testing.B) {
	b.Run("base-zerolog-disabled", func(b *testing.B) {
		zl := zerolog.New(&countSink{}).Level(zerolog.Disabled)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			zl.Info().Str("k", "value").Int("i", i).Msg("a line")
		}
	})
	b.Run("facility-disabled", func(b *testing.B) {
		g := benchGraph(b)
		f := g.Facility("debug/bench")
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			f.Log().Str("k", "value").Int("i", i).Msg("a line")
		}
	})
	b.Run("facility-disabled-enabled-check", func(b *testing.B) {
		g := benchGraph(b)
		f := g.Facility("debug/bench")
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if f.Enabled() {
				f.Log().Str("k", "value").Int("i", i).Msg("a line")
			}
		}
	})
}

// BenchmarkFileLines is the rate of lines into a rotating, asynchronous
// log file against bare zerolog writing to a plain file.
func BenchmarkFileLines(b *testing.B) {
	report := func(b *testing.B, start time.Time) {
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lines/s")
	}
	b.Run("base-zerolog-file", func(b *testing.B) {
		fh, err := os.Create(filepath.Join(b.TempDir(), "plain.log"))
		if err != nil {
			b.Fatal(err)
		}
		defer fh.Close()
		zl := zerolog.New(fh).With().Timestamp().Str("facility", "app").Logger()
		b.ReportAllocs()
		start := time.Now()
		for i := 0; b.Loop(); i++ {
			zl.Log().Str("k", "value").Int("i", i).Msg("a line of moderate length")
		}
		report(b, start)
	})
	b.Run("base-zerolog-bufio-file", func(b *testing.B) {
		// Buffered and unsynchronized: fast, but a crash loses the buffer.
		fh, err := os.Create(filepath.Join(b.TempDir(), "plain.log"))
		if err != nil {
			b.Fatal(err)
		}
		defer fh.Close()
		w := bufio.NewWriterSize(fh, 64<<10)
		zl := zerolog.New(w).With().Timestamp().Str("facility", "app").Logger()
		b.ReportAllocs()
		start := time.Now()
		for i := 0; b.Loop(); i++ {
			zl.Log().Str("k", "value").Int("i", i).Msg("a line of moderate length")
		}
		w.Flush()
		report(b, start)
	})
	for _, tc := range []struct {
		name string
		typ  string
		over Overflow
	}{{"rotating-async-block", "file", Block}, {"rotating-sync", "file_synch", Block}} {
		b.Run(tc.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "rot.log")
			g := benchGraph(b,
				Spec{Name: "file", Type: tc.typ, Path: path, Format: FormatJSON, Overflow: tc.over,
					File: FileOptions{RotateBytes: 8 << 20, RetainCount: 2}},
				Spec{Name: "app", Outlets: []string{"file"}},
			)
			f := g.Facility("app")
			b.ReportAllocs()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				f.Log().Str("k", "value").Int("i", i).Msg("a line of moderate length")
			}
			if err := g.Flush(); err != nil { // count the lines as written
				b.Fatal(err)
			}
			report(b, start)
		})
	}
}

func BenchmarkRenderPlain(b *testing.B) {
	line := []byte(`{"facility":"app","time":"2026-11-26T10:00:00.000001Z","k":"value","i":12345,"message":"a line of moderate length"}` + "\n")
	buf := make([]byte, 0, 512)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		buf = renderPlain(buf[:0], line)
	}
}
