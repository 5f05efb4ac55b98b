package eventer

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSystemLifecycleAndSnapshot(t *testing.T) {
	checkNoLeak(t)
	var hs hearts
	s, err := New(Options{
		Concurrency: 2,
		Pools:       []PoolOptions{{Name: "io", Concurrency: 1, Timeout: time.Second}},
		Queues:      []QueueOptions{{Name: "dns", Concurrency: 2, Backlog: 10}},
		NewHeart:    hs.newHeart,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if err := s.Start(); err != nil { // idempotent while running
		t.Fatal(err)
	}
	for _, name := range []string{"e:default/0", "e:default/1", "e:io/0"} {
		if hs.get(name) == nil {
			t.Errorf("no heart %s", name)
		}
	}
	if h := hs.get("e:default/0"); h != nil && h.timeout != DefaultTimeout {
		t.Errorf("default pool heart timeout %v", h.timeout)
	}
	if s.Default().Name() != DefaultPool || s.Pool("io") == nil || s.Pool("nope") != nil {
		t.Fatal("pool lookup")
	}
	dq := s.Queue(DefaultQueue)
	if dq == nil || dq.Snapshot().Concurrency != DefaultQueueThreads {
		t.Fatal("default queue missing or misconfigured")
	}

	io := s.Pool("io").Loop(0)
	if _, err := io.Every("tick", time.Hour, func() {}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	err = s.Queue("dns").Add(context.Background(), Job{Name: "lookup", Loop: io,
		Work: func(context.Context) error { return nil },
		Done: func(err error) { done <- err }})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	onLoop(t, io, func() {})

	snap := s.Snapshot()
	if len(snap.Pools) != 2 || len(snap.Queues) != 2 {
		t.Fatalf("%d pools, %d queues", len(snap.Pools), len(snap.Queues))
	}
	iop := snap.Pools[1]
	if iop.Name != "io" || len(iop.Loops) != 1 || !iop.Loops[0].Responsive {
		t.Fatalf("io pool %+v", iop)
	}
	if tl := iop.Loops[0].Timers; len(tl) != 1 || tl[0].Name != "tick" || tl[0].Period != time.Hour {
		t.Fatalf("timers %+v", tl)
	}
	if h := iop.Callbacks["job:lookup"]; h.Count != 1 {
		t.Fatalf("completion histogram %+v", h)
	}
	if iop.Cycle.Count == 0 {
		t.Fatal("no cycle times recorded")
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"name":"io"`, `"cycletime"`, `"thread_id"`, `"name":"dns"`, `"bins":["H[`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("snapshot JSON lacks %s", want)
		}
	}

	s.Stop()
	s.Stop()
	if err := io.Post(func() {}); !errors.Is(err, ErrStopped) {
		t.Fatalf("post after Stop: %v", err)
	}
	if _, err := s.NewQueue(QueueOptions{Name: "late", Concurrency: 1}); !errors.Is(err, ErrStopped) {
		t.Fatalf("NewQueue after Stop: %v", err)
	}
}

func TestSystemServe(t *testing.T) {
	checkNoLeak(t)
	s, err := New(Options{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	waitFor(t, "the default loop to start", func() bool { return s.Default().Loop(0).Beats() != 0 })
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

func TestSystemRejectsDuplicates(t *testing.T) {
	for _, o := range []Options{
		{Pools: []PoolOptions{{Name: "a", Concurrency: 1}, {Name: "a", Concurrency: 1}}},
		{Queues: []QueueOptions{{Name: "a", Concurrency: 1}, {Name: "a", Concurrency: 1}}},
		{Pools: []PoolOptions{{Name: "bad name"}}},
	} {
		if _, err := New(o); !errors.Is(err, ErrInvalid) {
			t.Errorf("New(%+v) err = %v", o, err)
		}
	}
}
