package watchdog

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPruneArtifacts(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int // per incident, oldest first
		max   int64
		keep  []bool
	}{
		{"within budget", []int{100, 100, 100}, 300, []bool{true, true, true}},
		{"oldest go first", []int{100, 100, 100}, 150, []bool{false, false, true}},
		{"one over", []int{100, 100, 100}, 250, []bool{false, true, true}},
		{"newest kept even when alone too large", []int{100, 500}, 50, []bool{false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			base := time.Now().Add(-time.Hour)
			var paths []string
			for i, n := range tt.sizes {
				p := filepath.Join(dir, "svc-"+string(rune('a'+i)))
				os.MkdirAll(p, 0o700)
				os.WriteFile(filepath.Join(p, "dump.txt"), make([]byte, n), 0o600)
				at := base.Add(time.Duration(i) * time.Minute)
				os.Chtimes(p, at, at)
				paths = append(paths, p)
			}
			pruneArtifacts(dir, tt.max)
			for i, p := range paths {
				_, err := os.Stat(p)
				if kept := err == nil; kept != tt.keep[i] {
					t.Errorf("incident %d: kept %v, want %v", i, kept, tt.keep[i])
				}
			}
		})
	}
}
