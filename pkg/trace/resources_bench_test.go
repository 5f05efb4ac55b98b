package trace

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// handReadTotals is how the process totals were read before gopsutil:
// stat, statm and the fd directory, by hand. It is kept here as the
// baseline of BenchmarkResourceSnapshot.
func handReadTotals(pid int) (*Resources, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return nil, err
	}
	ps, err := parseTaskStat(stat)
	if err != nil {
		return nil, err
	}
	r := &Resources{
		UserMS:   float64(ps.utime * clockTicksMS),
		SystemMS: float64(ps.stime * clockTicksMS),
		Threads:  ps.threads,
		OpenFDs:  -1,
	}
	if statm, err := os.ReadFile(filepath.Join(dir, "statm")); err == nil {
		if f := strings.Fields(string(statm)); len(f) >= 2 {
			if pages, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				r.RSSBytes = pages * uint64(os.Getpagesize())
			}
		}
	}
	if fds, err := os.ReadDir(filepath.Join(dir, "fd")); err == nil {
		r.OpenFDs = len(fds)
	}
	return r, nil
}

// TestTotalsMatchHandRead: gopsutil reads the figures the hand-written
// reader did, from a sleeping child.
func TestTotalsMatchHandRead(t *testing.T) {
	child := startChild(t, "sleep")
	pid := child.Process.Pid
	got, err := processTotals(context.Background(), int32(pid))
	if err != nil {
		t.Fatal(err)
	}
	want, err := handReadTotals(pid)
	if err != nil {
		t.Fatal(err)
	}
	// RSS and CPU may move between the two reads of a live process; the
	// counts of threads and descriptors of a sleeping child do not.
	if got.Threads != want.Threads || got.OpenFDs != want.OpenFDs || got.RSSBytes == 0 {
		t.Errorf("gopsutil %+v, by hand %+v", got, want)
	}
	if got.UserMS < 0 || got.SystemMS < 0 || got.UserMS+got.SystemMS > want.UserMS+want.SystemMS {
		t.Errorf("cpu: gopsutil %v+%v ms read before the hand-read %v+%v ms", got.UserMS, got.SystemMS, want.UserMS, want.SystemMS)
	}
}

// BenchmarkResourceSnapshot: the cost of one resource snapshot of a live
// process (this one). base-hand-read is the totals read by hand as before;
// gopsutil is the totals as read now; sample is a whole Sample (totals
// and every thread's stat and schedstat), which a capture pays.
func BenchmarkResourceSnapshot(b *testing.B) {
	pid := os.Getpid()
	b.Run("base-hand-read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := handReadTotals(pid); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gopsutil", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := processTotals(ctx, int32(pid)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sample", func(b *testing.B) {
		s := NewSampler(pid, SamplerOptions{})
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.Sample(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
