package watchdog

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/journal"
)

// BenchmarkProcAttrs: child death to the next child's start with zero
// backoff, with process attributes (umask and a file limit: the child goes
// through the trampoline) beside the same supervisor without any (the
// child is started directly, as in BenchmarkRespawn). Run with
// -benchtime=Nx for N respawns (at least 200 are taken).
func BenchmarkProcAttrs(b *testing.B) {
	child := respawnChild(b)
	run := func(b *testing.B, attrs func(*Config)) {
		n := max(b.N, 200) + 1
		dir := b.TempDir()
		log := filepath.Join(dir, "events.log")
		jw, _ := journal.Open(JournalDir(dir), journal.Options{NoSync: true})
		cfg := Config{Command: []string{child, log}, StateDir: dir, ZeroBackoff: true, Retries: 1 << 30, Span: time.Nanosecond}
		attrs(&cfg)
		s, err := New(cfg, Options{Journal: jw})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		t0 := time.Now()
		go func() { done <- s.Serve(context.Background()) }()
		waitStarts(b, log, n)
		elapsed := time.Since(t0)
		s.Stop()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		reportGaps(b, gaps(log), elapsed)
	}
	b.Run("trampoline", func(b *testing.B) {
		run(b, func(c *Config) { c.Umask = "022"; c.LimitNofile = "1024" })
	})
	b.Run("base-direct", func(b *testing.B) {
		run(b, func(*Config) {})
	})
}
