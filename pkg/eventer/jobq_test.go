package eventer

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestQueue(t *testing.T, opts QueueOptions) *Queue {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "q"
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 1
	}
	q, err := NewQueue(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	return q
}

// blocker occupies one worker until released.
type blocker struct {
	started, release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan struct{}), release: make(chan struct{})}
}

func (b *blocker) job() Job {
	return Job{Name: "blocker", Work: func(ctx context.Context) error {
		close(b.started)
		<-b.release
		return nil
	}}
}

func TestJobLifecycleEndsOnOwningLoop(t *testing.T) {
	checkNoLeak(t)
	p := startPool(t, PoolOptions{Concurrency: 2})
	q := newTestQueue(t, QueueOptions{Concurrency: 2})
	l := p.Loop(1)
	loopG := loopGoroutine(t, l)
	var steps []string
	var mu sync.Mutex
	step := func(s string) { mu.Lock(); steps = append(steps, s); mu.Unlock() }
	done := make(chan error, 1)
	workErr := errors.New("work failed")
	err := q.Add(context.Background(), Job{
		Name: "lifecycle",
		Loop: l,
		Work: func(ctx context.Context) error {
			if goid() == loopG {
				t.Error("work ran on the loop's goroutine")
			}
			step("work")
			return workErr
		},
		Cleanup: func(err error) {
			if !errors.Is(err, workErr) {
				t.Errorf("cleanup got %v", err)
			}
			step("cleanup")
		},
		Done: func(err error) {
			if goid() != loopG {
				t.Error("completion ran off the owning loop")
			}
			step("done")
			done <- err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, workErr) {
		t.Fatalf("done got %v", err)
	}
	if !slices.Equal(steps, []string{"work", "cleanup", "done"}) {
		t.Fatalf("steps %v", steps)
	}
	s := q.Snapshot()
	if s.Added != 1 || s.Started != 1 || s.Completed != 1 || s.Wait.Count != 1 || s.Run.Count != 1 {
		t.Fatalf("queue snapshot %+v", s)
	}
}

func TestJobPastDeadlineIsCancelled(t *testing.T) {
	checkNoLeak(t)
	q := newTestQueue(t, QueueOptions{Concurrency: 1})

	t.Run("running", func(t *testing.T) {
		done := make(chan error, 1)
		err := q.Add(context.Background(), Job{
			Name:    "slow",
			Timeout: 20 * time.Millisecond,
			Work: func(ctx context.Context) error {
				<-ctx.Done() // only the deadline ends this job
				return ctx.Err()
			},
			Done: func(err error) { done <- err },
		})
		if err != nil {
			t.Fatal(err)
		}
		err = <-done
		if !errors.Is(err, ErrDeadline) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("outcome %v, want ErrDeadline and DeadlineExceeded", err)
		}
	})

	t.Run("still waiting", func(t *testing.T) {
		b := newBlocker()
		if err := q.Add(context.Background(), b.job()); err != nil {
			t.Fatal(err)
		}
		<-b.started
		var ran atomic.Bool
		done := make(chan error, 1)
		err := q.Add(context.Background(), Job{
			Name:    "late",
			Timeout: 10 * time.Millisecond,
			Work:    func(context.Context) error { ran.Store(true); return nil },
			Done:    func(err error) { done <- err },
		})
		if err != nil {
			t.Fatal(err)
		}
		// Made after the job was added, with a longer timeout: once it ends,
		// the job's deadline has passed.
		later, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		<-later.Done()
		close(b.release)
		if err := <-done; !errors.Is(err, ErrDeadline) {
			t.Fatalf("outcome %v, want ErrDeadline", err)
		}
		if ran.Load() {
			t.Fatal("work ran after its deadline")
		}
	})
	if s := q.Snapshot(); s.Deadlines != 2 {
		t.Fatalf("deadlines %d, want 2", s.Deadlines)
	}
}

func TestBacklogFull(t *testing.T) {
	checkNoLeak(t)
	q := newTestQueue(t, QueueOptions{Concurrency: 1, Backlog: 2})
	b := newBlocker()
	if err := q.Add(context.Background(), b.job()); err != nil {
		t.Fatal(err)
	}
	<-b.started
	nop := Job{Name: "nop", Work: func(context.Context) error { return nil }}
	for range 2 {
		if err := q.TryAdd(nop); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.TryAdd(nop); !errors.Is(err, ErrBacklogFull) {
		t.Fatalf("TryAdd on a full backlog: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Add(ctx, nop); !errors.Is(err, context.Canceled) {
		t.Fatalf("Add with an ended context on a full backlog: %v", err)
	}
	// A waiting Add goes through once the backlog drains.
	added := make(chan error, 1)
	go func() { added <- q.Add(context.Background(), nop) }()
	close(b.release)
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	if s := q.Snapshot(); s.Rejected != 2 {
		t.Fatalf("rejected %d, want 2", s.Rejected)
	}
}

func TestOrdering(t *testing.T) {
	type add struct{ sub, id uint64 }
	tests := []struct {
		name string
		lifo bool
		adds []add
		want []uint64
	}{
		{"fifo", false, []add{{0, 1}, {0, 2}, {0, 3}, {0, 4}}, []uint64{1, 2, 3, 4}},
		{"lifo", true, []add{{0, 1}, {0, 2}, {0, 3}, {0, 4}}, []uint64{4, 3, 2, 1}},
		{"subqueues take turns", false,
			[]add{{7, 1}, {7, 2}, {7, 3}, {7, 4}, {7, 5}, {9, 11}, {9, 12}},
			[]uint64{1, 11, 2, 12, 3, 4, 5}},
		{"subqueues lifo", true,
			[]add{{7, 1}, {7, 2}, {7, 3}, {9, 11}, {9, 12}},
			[]uint64{3, 12, 2, 11, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeak(t)
			q := newTestQueue(t, QueueOptions{Concurrency: 1, LIFO: tt.lifo})
			b := newBlocker()
			if err := q.Add(context.Background(), b.job()); err != nil {
				t.Fatal(err)
			}
			<-b.started
			var mu sync.Mutex
			var got []uint64
			var wg sync.WaitGroup
			for _, a := range tt.adds {
				wg.Add(1)
				err := q.Add(context.Background(), Job{Subqueue: a.sub, Work: func(context.Context) error {
					mu.Lock()
					got = append(got, a.id)
					mu.Unlock()
					wg.Done()
					return nil
				}})
				if err != nil {
					t.Fatal(err)
				}
			}
			close(b.release)
			wg.Wait()
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ran %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConcurrencyAndFloor(t *testing.T) {
	checkNoLeak(t)
	q := newTestQueue(t, QueueOptions{Concurrency: 3, Max: 4, Floor: 1, IdleTimeout: 10 * time.Millisecond})
	var running, peak atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		err := q.Add(context.Background(), Job{Work: func(context.Context) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-release
			running.Add(-1)
			wg.Done()
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three jobs running", func() bool { return running.Load() == 3 })
	if s := q.Snapshot(); s.Workers != 3 || s.Backlog != 7 {
		t.Fatalf("workers %d backlog %d, want 3 and 7", s.Workers, s.Backlog)
	}
	if err := q.SetConcurrency(4); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "four jobs running", func() bool { return running.Load() == 4 })
	if err := q.SetConcurrency(5); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetConcurrency above max: %v", err)
	}
	close(release)
	wg.Wait()
	if p := peak.Load(); p != 4 {
		t.Fatalf("peak concurrency %d, want 4", p)
	}
	waitFor(t, "idle workers to shrink to the floor", func() bool { return q.Snapshot().Workers == 1 })
}

func TestCloseQueue(t *testing.T) {
	checkNoLeak(t)
	q, err := NewQueue(QueueOptions{Name: "closing", Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	running := make(chan struct{})
	outcomes := make(chan error, 2)
	err = q.Add(context.Background(), Job{Name: "running",
		Work: func(ctx context.Context) error { close(running); <-ctx.Done(); return ctx.Err() },
		Done: func(err error) { outcomes <- err }})
	if err != nil {
		t.Fatal(err)
	}
	<-running
	var ran atomic.Bool
	var cleaned atomic.Bool
	err = q.Add(context.Background(), Job{Name: "waiting",
		Work:    func(context.Context) error { ran.Store(true); return nil },
		Cleanup: func(error) { cleaned.Store(true) },
		Done:    func(err error) { outcomes <- err }})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	q.Close()
	for range 2 {
		if err := <-outcomes; !errors.Is(err, ErrClosed) {
			t.Fatalf("outcome %v, want ErrClosed", err)
		}
	}
	if ran.Load() || !cleaned.Load() {
		t.Fatalf("waiting job: ran %v, cleaned up %v; want false, true", ran.Load(), cleaned.Load())
	}
	if err := q.TryAdd(Job{Work: func(context.Context) error { return nil }}); !errors.Is(err, ErrClosed) {
		t.Fatalf("TryAdd after Close: %v", err)
	}
}

func TestQueueOptionsRejected(t *testing.T) {
	for _, o := range []QueueOptions{
		{Name: "q", Concurrency: 0},
		{Name: "q", Concurrency: 5, Max: 4},
		{Name: "q", Concurrency: 2, Min: 3, Max: 4},
		{Name: "q", Concurrency: 1, Floor: 2},
		{Name: "q", Concurrency: 1, Backlog: -1},
		{Name: "", Concurrency: 1},
	} {
		if _, err := NewQueue(o); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewQueue(%+v) err = %v, want ErrInvalid", o, err)
		}
	}
	q := newTestQueue(t, QueueOptions{})
	if err := q.TryAdd(Job{Name: "nothing"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("job without work: %v", err)
	}
}
