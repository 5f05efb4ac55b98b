package trace_test

import (
	"fmt"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// Two crashes of the same bug, in different processes with different panic
// values, share a fingerprint.
func ExampleFingerprint() {
	crash := func(pid int, value string) *trace.Record {
		out := "panic: order " + value + " not found\n\ngoroutine 1 [running]:\n" +
			"main.lookup(0xc000012345)\n\t/src/shop/main.go:42 +0x1d\nmain.main()\n\t/src/shop/main.go:10 +0x25\n"
		gs, _, err := trace.ParseCrash([]byte(out))
		if err != nil {
			panic(err)
		}
		return &trace.Record{Reason: trace.ReasonCrash, PID: pid, Goroutines: gs, CrashOutput: out}
	}
	a, b := crash(100, "1234"), crash(200, "98765")
	fmt.Println(trace.Fingerprint(a) == trace.Fingerprint(b))
	fmt.Println(trace.Summary(a))
	// Output:
	// true
	// main.lookup
}

func ExampleBuckets() {
	worker := trace.Frame{Function: "main.worker", File: "/src/w.go", Line: 12}
	gs := []trace.Goroutine{
		{ID: 1, State: "running", Culprit: true, Frames: []trace.Frame{{Function: "main.main", File: "/src/main.go", Line: 9}}},
		{ID: 7, State: "waiting", WaitReason: "chan receive", WaitMS: 60000, Frames: []trace.Frame{worker}},
		{ID: 8, State: "waiting", WaitReason: "chan receive", WaitMS: 120000, Frames: []trace.Frame{worker}},
	}
	for _, b := range trace.Buckets(gs) {
		fmt.Println(b.Count(), b.WaitReason, b.IDs, b.Culprit)
	}
	// Output:
	// 1  [1] true
	// 2 chan receive [7 8] false
}
