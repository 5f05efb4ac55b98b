package capture

import (
	"context"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

func gor(id int64, thread int, labels map[string]string, fn string) trace.Goroutine {
	return trace.Goroutine{ID: id, State: "waiting", ThreadID: thread, Labels: labels,
		Frames: []trace.Frame{{Function: fn, File: "/src/x.go", Line: int(id)}}}
}

func culprit(rec *trace.Record) int64 {
	for _, g := range rec.Goroutines {
		if g.Culprit {
			return g.ID
		}
	}
	return -1
}

// The culprit a stall names: its heart's thread first, then the reported
// labels, then the heart's label; a marking from the parser is replaced.
func TestStoreCulprit(t *testing.T) {
	gs := func() []trace.Goroutine {
		return []trace.Goroutine{
			gor(1, 0, nil, "main.main"),
			gor(2, 11, map[string]string{"mtev.heart": "e:default/0"}, "main.loop0"),
			gor(3, 12, map[string]string{"mtev.route": "GET /a", "pool": "x"}, "main.routeA"),
			gor(4, 13, map[string]string{"mtev.route": "GET /b"}, "main.routeB"),
		}
	}
	for _, tc := range []struct {
		name  string
		stall *trace.Stall
		want  int64
	}{
		{"thread", &trace.Stall{Heart: "e:default/0", ThreadID: 13}, 4},
		{"labels", &trace.Stall{Labels: map[string]string{"mtev.route": "GET /a"}}, 3},
		{"labels must all match", &trace.Stall{Labels: map[string]string{"mtev.route": "GET /a", "pool": "y"}, Heart: "e:default/0"}, 2},
		{"heart label", &trace.Stall{Heart: "e:default/0"}, 2},
	} {
		g := gs()
		g[0].Culprit = true // a parser's guess, replaced by what the stall names
		rec := &trace.Record{Stall: tc.stall}
		Store(rec, g)
		if got := culprit(rec); got != tc.want {
			t.Errorf("%s: culprit %d, want %d", tc.name, got, tc.want)
		}
	}
	// A crash: the parser's marking stays.
	g := gs()
	g[2].Culprit = true
	rec := &trace.Record{}
	Store(rec, g)
	if got := culprit(rec); got != 3 {
		t.Errorf("crash: culprit %d, want 3", got)
	}
}

// A very large process is bounded to MaxGoroutines, the culprit kept
// even when it comes last.
func TestStoreBounds(t *testing.T) {
	gs := make([]trace.Goroutine, MaxGoroutines+100)
	for i := range gs {
		gs[i] = gor(int64(i+1), 0, nil, "main.worker")
	}
	gs[len(gs)-1] = gor(int64(len(gs)), 0, map[string]string{"mtev.route": "GET /stuck"}, "main.stuck")
	rec := &trace.Record{Stall: &trace.Stall{Labels: map[string]string{"mtev.route": "GET /stuck"}}}
	Store(rec, gs)
	if len(rec.Goroutines) != MaxGoroutines || rec.GoroutinesOmitted != 100 {
		t.Fatalf("%d kept, %d omitted", len(rec.Goroutines), rec.GoroutinesOmitted)
	}
	if !rec.Goroutines[0].Culprit || rec.Goroutines[0].Frames[0].Function != "main.stuck" {
		t.Fatalf("first kept: %+v", rec.Goroutines[0])
	}
}

type named string

func (n named) Name() trace.Method                                  { return trace.Method(n) }
func (named) Applies(*Target, *trace.Record, bool) bool             { return true }
func (named) Capture(context.Context, *Target, *trace.Record) error { return nil }

// The chain is ordered by the order given at registration, whatever the
// order of the calls.
func TestChainOrder(t *testing.T) {
	before := len(Chain())
	Register(1000, named("late"))
	Register(-1000, named("early"))
	Register(1000, named("later"))
	names := Names()
	if len(names) != before+3 || names[0] != "early" || names[len(names)-2] != "late" || names[len(names)-1] != "later" {
		t.Fatalf("chain %v", names)
	}
}

// A stall that names no goroutine (a probe's) of a child that dumped
// itself: the goroutine writing the dump, the one running, is not the
// culprit; the one stuck on a lock is.
func TestStoreSkipsDumper(t *testing.T) {
	dumper := trace.Goroutine{ID: 14, State: "running", Frames: []trace.Frame{
		{Function: "runtime/pprof.writeGoroutineStacks"},
		{Function: dumpServer + "writeFile.func1"},
		{Function: dumpServer + "Serve"},
	}}
	stuck := trace.Goroutine{ID: 27, State: "waiting", WaitReason: "sync.Mutex.Lock", Frames: []trace.Frame{
		{Function: "sync.(*Mutex).Lock"},
		{Function: "main.stuckWorker"},
	}}
	rec := &trace.Record{Stall: &trace.Stall{Source: trace.SourceProbe, Name: "tcp://127.0.0.1:1"}}
	Store(rec, []trace.Goroutine{gor(1, 0, nil, "main.main"), dumper, stuck})
	if got := culprit(rec); got != 27 {
		t.Errorf("culprit %d, want 27 (the stuck one, not the dumper)", got)
	}
	// Only the dumper: it is all there is.
	rec = &trace.Record{Stall: &trace.Stall{Source: trace.SourceProbe}}
	Store(rec, []trace.Goroutine{dumper})
	if got := culprit(rec); got != 14 {
		t.Errorf("culprit %d, want 14", got)
	}
}
