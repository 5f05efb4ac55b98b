package trace

import (
	"slices"
	"testing"
)

func TestBuckets(t *testing.T) {
	fr := func(fn string, line int) []Frame {
		return []Frame{{Function: "runtime.gopark", File: "/go/proc.go", Line: 1}, {Function: fn, File: "/src/a.go", Line: line}}
	}
	creator := &Frame{Function: "main.main", File: "/src/a.go", Line: 3}
	gs := []Goroutine{
		{ID: 9, State: "waiting", WaitReason: "chan receive", WaitMS: 60000, Frames: fr("main.worker", 10), CreatedBy: creator},
		{ID: 1, State: "running", Frames: fr("main.main", 5), Culprit: true},
		{ID: 4, State: "waiting", WaitReason: "chan receive", WaitMS: 120000, Frames: fr("main.worker", 10), CreatedBy: creator},
		{ID: 5, State: "waiting", WaitReason: "chan receive", Frames: fr("main.worker", 10), CreatedBy: creator},
		{ID: 6, State: "waiting", WaitReason: "chan receive", Frames: fr("main.worker", 11), CreatedBy: creator},                        // other line
		{ID: 7, State: "waiting", WaitReason: "select", Frames: fr("main.worker", 10), CreatedBy: creator},                              // other reason
		{ID: 8, State: "waiting", WaitReason: "chan receive", Frames: fr("main.worker", 10)},                                            // no creator
		{ID: 2, State: "waiting", WaitReason: "chan receive", Frames: fr("main.worker", 10), CreatedBy: &Frame{Function: "main.other"}}, // other creator
	}
	bs := Buckets(gs)
	type want struct {
		ids      []int64
		culprit  bool
		min, max int64
	}
	wants := []want{
		{[]int64{1}, true, 0, 0},
		{[]int64{4, 5, 9}, false, 0, 120000},
		{[]int64{2}, false, 0, 0},
		{[]int64{6}, false, 0, 0},
		{[]int64{7}, false, 0, 0},
		{[]int64{8}, false, 0, 0},
	}
	if len(bs) != len(wants) {
		t.Fatalf("%d buckets, want %d: %+v", len(bs), len(wants), bs)
	}
	for i, w := range wants {
		b := bs[i]
		if !slices.Equal(b.IDs, w.ids) || b.Culprit != w.culprit || b.MinWaitMS != w.min || b.MaxWaitMS != w.max || b.Count() != len(w.ids) {
			t.Errorf("bucket %d = ids %v culprit %v wait %d-%d, want %+v", i, b.IDs, b.Culprit, b.MinWaitMS, b.MaxWaitMS, w)
		}
	}
	if gs[0].ID != 9 {
		t.Error("Buckets modified its input")
	}
	if len(Buckets(nil)) != 0 {
		t.Error("buckets of nothing")
	}
}

// TestBucketsRealDump groups a real GOTRACEBACK=crash dump: every goroutine
// lands in one bucket, the culprit's first.
func TestBucketsRealDump(t *testing.T) {
	gs, _, err := ParseCrash(readFixture(t, "deadlock-crash"))
	if err != nil {
		t.Fatal(err)
	}
	bs := Buckets(gs)
	total := 0
	for _, b := range bs {
		total += b.Count()
	}
	if total != len(gs) || !bs[0].Culprit || bs[0].IDs[0] != 1 {
		t.Errorf("buckets cover %d of %d goroutines; first %+v", total, len(gs), bs[0])
	}
}

func BenchmarkBuckets(b *testing.B) {
	gs := make([]Goroutine, 100_000)
	for i := range gs {
		gs[i] = Goroutine{ID: int64(i + 1), State: "waiting", WaitReason: "chan receive",
			Frames: []Frame{{Function: "runtime.gopark", File: "/go/proc.go", Line: 1}, {Function: "main.worker", File: "/src/a.go", Line: 10 + i%10}}}
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = Buckets(gs)
	}
}
