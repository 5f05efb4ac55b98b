package trace

import "testing"

func TestGuessCulprit(t *testing.T) {
	fr := func(fns ...string) []Frame {
		var out []Frame
		for _, f := range fns {
			out = append(out, Frame{Function: f})
		}
		return out
	}
	runtimeG := Goroutine{ID: 2, State: "waiting", WaitReason: "GC sweep wait", Frames: fr("runtime.gopark", "runtime.bgsweep")}
	tests := []struct {
		name string
		gs   []Goroutine
		want int64 // goroutine id
	}{
		{"spin wins", []Goroutine{
			{ID: 1, State: "waiting", WaitReason: "chan receive", Frames: fr("runtime.gopark", "main.main")},
			{ID: 7, State: "running", Frames: fr("main.spin", "main.main")},
			runtimeG,
		}, 7},
		{"deadlock: lock waiters by name, not id", []Goroutine{
			{ID: 1, State: "waiting", WaitReason: "sync.WaitGroup.Wait", Frames: fr("sync.(*WaitGroup).Wait", "main.main")},
			{ID: 9, State: "waiting", WaitReason: "sync.Mutex.Lock", Frames: fr("sync.(*Mutex).Lock", "main.lockOrderB")},
			{ID: 8, State: "waiting", WaitReason: "sync.Mutex.Lock", Frames: fr("sync.(*Mutex).Lock", "main.lockOrderA")},
		}, 8},
		{"main blocked", []Goroutine{
			runtimeG,
			{ID: 1, State: "waiting", WaitReason: "chan receive", Frames: fr("runtime.gopark", "main.recvForever", "main.main")},
			{ID: 5, State: "waiting", WaitReason: "select", WaitMS: 99999, Frames: fr("runtime.gopark", "main.worker")},
		}, 1},
		{"longest wait", []Goroutine{
			runtimeG,
			{ID: 5, State: "waiting", WaitReason: "select", WaitMS: 10, Frames: fr("main.a")},
			{ID: 6, State: "waiting", WaitReason: "select", WaitMS: 90, Frames: fr("main.b")},
		}, 6},
		{"only runtime", []Goroutine{runtimeG}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := GuessCulprit(tt.gs)
			if i < 0 || tt.gs[i].ID != tt.want {
				t.Fatalf("GuessCulprit = %d, want goroutine %d", i, tt.want)
			}
		})
	}
	if GuessCulprit(nil) != -1 {
		t.Fatal("empty list")
	}
}
