package watchdog

import (
	"os"
	"path/filepath"
	"sort"
)

// DefaultArtifactMaxBytes bounds the artifacts kept with records (dumps,
// flight-recorder traces, cores, glider output).
const DefaultArtifactMaxBytes = 1 << 30

// pruneArtifacts removes whole incident directories under dir, oldest
// first, until what is left totals at most max bytes. The newest
// directory is always kept, however large: it belongs to the record just
// written. Records whose artifacts are gone keep their paths; `traces show`
// then finds no file there.
func pruneArtifacts(dir string, max int64) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type incident struct {
		path  string
		mtime int64
		size  int64
	}
	var all []incident
	var total int64
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		info, err := e.Info()
		if err != nil {
			continue
		}
		var size int64
		filepath.WalkDir(p, func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					size += fi.Size()
				}
			}
			return nil
		})
		all = append(all, incident{p, info.ModTime().UnixNano(), size})
		total += size
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mtime < all[j].mtime })
	for i := 0; total > max && i < len(all)-1; i++ {
		if os.RemoveAll(all[i].path) == nil {
			total -= all[i].size
		}
	}
}
