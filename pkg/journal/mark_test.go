package journal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// After a torn tail takes records 24 to 26 with it, the next record is 27:
// an id once handed out is never handed out again, and the repair is
// reported.
func TestIDsUniqueAcrossTornTail(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{NoSync: true})
	for i := range 26 {
		mustAppend(t, w, record(i, 40))
	}
	w.Close()
	seg := filepath.Join(dir, segName(1))
	frame := int64(frameOverhead + 40)
	// Cut in the middle of record 24: 25 and 26 are gone whole.
	if err := os.Truncate(seg, headerSize+23*frame+7); err != nil {
		t.Fatal(err)
	}
	var repairs []string
	w = mustOpen(t, dir, Options{NoSync: true, OnRepair: func(d Damage, repair string) { repairs = append(repairs, d.Kind+": "+repair) }})
	defer w.Close()
	if seq := mustAppend(t, w, []byte("after")); seq != 27 {
		t.Fatalf("first record after the repair got id %d, want 27", seq)
	}
	if len(repairs) != 2 || !strings.Contains(repairs[0], "cut to") || !strings.Contains(repairs[1], "records 24 to 26 are lost") {
		t.Fatalf("repairs reported: %q", repairs)
	}
	got, damage := readAll(t, dir, 0)
	if len(got) != 24 || got[22].Seq != 23 || got[23].Seq != 27 {
		t.Fatalf("read %d records, last two %v", len(got), got[len(got)-2:])
	}
	if !hasDamage(damage, DamageTruncated) {
		t.Fatalf("the lost records are not reported as damage: %v", damage)
	}
}

// A segment truncated exactly at the end of its header is damaged, not an
// empty segment; the writer goes on after the lost records.
func TestSegmentTruncatedAtHeaderEnd(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{NoSync: true})
	for i := range 3 {
		mustAppend(t, w, record(i, 40))
	}
	w.Close()
	if err := os.Truncate(filepath.Join(dir, segName(1)), headerSize); err != nil {
		t.Fatal(err)
	}
	got, damage := readAll(t, dir, 0)
	if len(got) != 0 || !hasDamage(damage, DamageTruncated) {
		t.Fatalf("read %d records, damage %v: want none and the truncation reported", len(got), damage)
	}
	w = mustOpen(t, dir, Options{NoSync: true})
	defer w.Close()
	if seq := mustAppend(t, w, []byte("after")); seq != 4 {
		t.Fatalf("next id %d, want 4", seq)
	}
	// Still reported once a newer segment follows it.
	if _, damage := readAll(t, dir, 0); !hasDamage(damage, DamageTruncated) {
		t.Fatalf("damage after the next append: %v", damage)
	}
}

func hasDamage(ds []Damage, kind string) bool {
	for _, d := range ds {
		if d.Kind == kind {
			return true
		}
	}
	return false
}
