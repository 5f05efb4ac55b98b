package eventer

import "fmt"

// SetMin changes the lowest concurrency SetConcurrency accepts (at least 1,
// at most Max); a concurrency below it is raised to it.
func (q *Queue) SetMin(n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n < 1 || n > q.opts.Max {
		return fmt.Errorf("eventer: queue %s: min %d outside [1, %d]: %w", q.name, n, q.opts.Max, ErrInvalid)
	}
	q.opts.Min = n
	if q.concurrency < n {
		q.concurrency = n
		q.spawnLocked()
	}
	return nil
}

// SetMax changes the highest concurrency SetConcurrency accepts (at least
// Min and Floor); a concurrency above it is lowered to it.
func (q *Queue) SetMax(n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n < q.opts.Min || n < q.opts.Floor {
		return fmt.Errorf("eventer: queue %s: max %d below min %d or floor %d: %w", q.name, n, q.opts.Min, q.opts.Floor, ErrInvalid)
	}
	q.opts.Max = n
	if q.concurrency > n {
		q.concurrency = n
	}
	return nil
}

// SetFloor changes how many idle workers are kept (0 to Max).
func (q *Queue) SetFloor(n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n < 0 || n > q.opts.Max {
		return fmt.Errorf("eventer: queue %s: floor %d outside [0, %d]: %w", q.name, n, q.opts.Max, ErrInvalid)
	}
	q.opts.Floor = n
	return nil
}
