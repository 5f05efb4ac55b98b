package eventer

import (
	"errors"
	"testing"
)

func TestQueueLimits(t *testing.T) {
	q, err := NewQueue(QueueOptions{Name: "limits", Concurrency: 2, Max: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	steps := []struct {
		name string
		set  func(int) error
		n    int
		ok   bool
		want QueueSnapshot // Concurrency, Min, Max, Floor
	}{
		{"min 3 raises concurrency", q.SetMin, 3, true, QueueSnapshot{Concurrency: 3, Min: 3, Max: 4}},
		{"min above max", q.SetMin, 5, false, QueueSnapshot{Concurrency: 3, Min: 3, Max: 4}},
		{"min 0", q.SetMin, 0, false, QueueSnapshot{Concurrency: 3, Min: 3, Max: 4}},
		{"floor 4", q.SetFloor, 4, true, QueueSnapshot{Concurrency: 3, Min: 3, Max: 4, Floor: 4}},
		{"max below floor", q.SetMax, 3, false, QueueSnapshot{Concurrency: 3, Min: 3, Max: 4, Floor: 4}},
		{"floor 1", q.SetFloor, 1, true, QueueSnapshot{Concurrency: 3, Min: 3, Max: 4, Floor: 1}},
		{"max 3 keeps concurrency", q.SetMax, 3, true, QueueSnapshot{Concurrency: 3, Min: 3, Max: 3, Floor: 1}},
		{"min 1", q.SetMin, 1, true, QueueSnapshot{Concurrency: 3, Min: 1, Max: 3, Floor: 1}},
		{"max 2 lowers concurrency", q.SetMax, 2, true, QueueSnapshot{Concurrency: 2, Min: 1, Max: 2, Floor: 1}},
		{"concurrency outside", q.SetConcurrency, 3, false, QueueSnapshot{Concurrency: 2, Min: 1, Max: 2, Floor: 1}},
		{"floor -1", q.SetFloor, -1, false, QueueSnapshot{Concurrency: 2, Min: 1, Max: 2, Floor: 1}},
	}
	for _, s := range steps {
		err := s.set(s.n)
		if (err == nil) != s.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: error %v", s.name, err)
		}
		got := q.Snapshot()
		if got.Concurrency != s.want.Concurrency || got.Min != s.want.Min || got.Max != s.want.Max || got.Floor != s.want.Floor {
			t.Errorf("%s: concurrency %d min %d max %d floor %d, want %d %d %d %d", s.name,
				got.Concurrency, got.Min, got.Max, got.Floor, s.want.Concurrency, s.want.Min, s.want.Max, s.want.Floor)
		}
	}
}
