package eventer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// QueueOptions configure a job queue.
type QueueOptions struct {
	// Name of the queue. Required.
	Name string
	// Concurrency is how many jobs may run at once: workers are started on
	// demand up to it. At least 1.
	Concurrency int
	// Min and Max bound SetConcurrency. Zero means 1 and Concurrency.
	Min, Max int
	// Floor is how many idle workers are kept; the others exit after
	// IdleTimeout without work. At most Concurrency.
	Floor int
	// IdleTimeout defaults to 5 s, as libmtev.
	IdleTimeout time.Duration
	// Backlog limits the jobs waiting to run (not those running): Add then
	// waits and TryAdd fails with ErrBacklogFull. Zero: unlimited.
	Backlog int
	// LIFO runs the newest waiting job of a subqueue first.
	LIFO bool
	// SlowThreshold: a job whose work ran at least this long is counted and
	// reported to OnSlow and in snapshots. Zero turns reporting off.
	SlowThreshold time.Duration
	// OnSlow receives slow jobs on the worker that ran them. It must not
	// block.
	OnSlow func(SlowCallback)
}

// Job is asynchronous work: Work runs on a queue worker, then Cleanup on the
// same worker, then Done on Loop (or on the worker when Loop is nil), as
// libmtev's WORK, CLEANUP and completion.
type Job struct {
	// Name labels the job in slow reports.
	Name string
	// Work does the job. Its context ends at the job's deadline or when the
	// queue closes; Work must watch it, since a goroutine cannot be killed.
	Work func(ctx context.Context) error
	// Cleanup, optional, runs on the worker after Work, or instead of it when
	// the job never ran, with the job's outcome.
	Cleanup func(err error)
	// Done, optional, receives the job's outcome on Loop; on the worker when
	// Loop is nil or has stopped.
	Done func(err error)
	// Loop that owns the job; Done runs there. Nil: Done runs on the worker.
	Loop *Loop
	// Timeout, counted from Add, cancels Work's context. Zero: none. A job
	// still waiting at its deadline does not run; its outcome wraps
	// ErrDeadline.
	Timeout time.Duration
	// Subqueue: waiting jobs are taken from the subqueues in turn, so one
	// busy key cannot starve the others.
	Subqueue uint64
}

type queued struct {
	job    Job
	ctx    context.Context
	cancel context.CancelFunc
	added  int64 // mono()
}

type subqueue struct {
	key  uint64
	jobs []*queued // FIFO takes from the front, LIFO from the back
	head int
}

func (s *subqueue) len() int { return len(s.jobs) - s.head }

// Queue is a pool of worker goroutines running jobs. All methods are safe
// from any goroutine.
type Queue struct {
	name string
	opts QueueOptions

	ctx    context.Context
	cancel context.CancelFunc

	mu          sync.Mutex
	subs        map[uint64]*subqueue
	ring        []*subqueue // subqueues with waiting jobs, in turn order
	turn        int
	backlog     int
	concurrency int
	workers     int
	idle        []chan struct{} // one wake channel per idle worker
	space       chan struct{}   // closed when the backlog shrinks and adders wait
	adders      int             // Add calls waiting for space
	closed      bool
	wg          sync.WaitGroup

	added, started, completed atomic.Uint64
	rejected, deadlines       atomic.Uint64
	cancelled, slowJobs       atomic.Uint64
	running                   atomic.Int64
	wait, run                 latency
	slow                      slowRing
}

// NewQueue checks the options and makes a running queue (its workers start
// on demand). Close stops it.
func NewQueue(opts QueueOptions) (*Queue, error) {
	if err := checkName(opts.Name); err != nil {
		return nil, fmt.Errorf("eventer: queue: %w", err)
	}
	if opts.Min == 0 {
		opts.Min = 1
	}
	if opts.Max == 0 {
		opts.Max = max(opts.Concurrency, opts.Min)
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 5 * time.Second
	}
	switch {
	case opts.Concurrency < 1:
		return nil, fmt.Errorf("eventer: queue %s: concurrency %d: %w", opts.Name, opts.Concurrency, ErrInvalid)
	case opts.Min < 1 || opts.Min > opts.Max || opts.Concurrency < opts.Min || opts.Concurrency > opts.Max:
		return nil, fmt.Errorf("eventer: queue %s: need 1 <= min %d <= concurrency %d <= max %d: %w",
			opts.Name, opts.Min, opts.Concurrency, opts.Max, ErrInvalid)
	case opts.Floor < 0 || opts.Floor > opts.Max:
		return nil, fmt.Errorf("eventer: queue %s: floor %d outside [0, %d]: %w", opts.Name, opts.Floor, opts.Max, ErrInvalid)
	case opts.Backlog < 0 || opts.IdleTimeout < 0 || opts.SlowThreshold < 0:
		return nil, fmt.Errorf("eventer: queue %s: negative backlog or duration: %w", opts.Name, ErrInvalid)
	}
	q := &Queue{
		name:        opts.Name,
		opts:        opts,
		subs:        map[uint64]*subqueue{},
		concurrency: opts.Concurrency,
		space:       make(chan struct{}),
	}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	return q, nil
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

// SetConcurrency changes how many jobs may run at once, within [Min, Max].
// Extra workers exit as they finish their jobs.
func (q *Queue) SetConcurrency(n int) error {
	q.mu.Lock()
	if n < q.opts.Min || n > q.opts.Max {
		q.mu.Unlock()
		return fmt.Errorf("eventer: queue %s: concurrency %d outside [%d, %d]: %w", q.name, n, q.opts.Min, q.opts.Max, ErrInvalid)
	}
	q.concurrency = n
	q.spawnLocked()
	q.mu.Unlock()
	return nil
}

// Add queues the job, waiting while the backlog is full until ctx ends.
func (q *Queue) Add(ctx context.Context, j Job) error {
	return q.add(ctx, j, true)
}

// TryAdd queues the job, or fails at once with ErrBacklogFull.
func (q *Queue) TryAdd(j Job) error {
	return q.add(context.Background(), j, false)
}

func (q *Queue) add(ctx context.Context, j Job, wait bool) error {
	if j.Work == nil {
		return fmt.Errorf("eventer: queue %s: job %q has no work: %w", q.name, j.Name, ErrInvalid)
	}
	it := &queued{job: j, added: mono()}
	q.mu.Lock()
	for {
		if q.closed {
			q.mu.Unlock()
			return fmt.Errorf("eventer: queue %s: add: %w", q.name, ErrClosed)
		}
		if q.opts.Backlog == 0 || q.backlog < q.opts.Backlog {
			break
		}
		if !wait {
			q.mu.Unlock()
			q.rejected.Add(1)
			return fmt.Errorf("eventer: queue %s: add %q: %w", q.name, j.Name, ErrBacklogFull)
		}
		space := q.space
		q.adders++
		q.mu.Unlock()
		var cerr error
		select {
		case <-space:
		case <-ctx.Done():
			cerr = ctx.Err()
		}
		q.mu.Lock()
		q.adders--
		if cerr != nil {
			q.mu.Unlock()
			q.rejected.Add(1)
			return fmt.Errorf("eventer: queue %s: add %q: %w", q.name, j.Name, cerr)
		}
	}
	if j.Timeout > 0 {
		it.ctx, it.cancel = context.WithTimeout(q.ctx, j.Timeout)
	} else {
		it.ctx, it.cancel = context.WithCancel(q.ctx)
	}
	s := q.subs[j.Subqueue]
	if s == nil {
		s = &subqueue{key: j.Subqueue}
		q.subs[j.Subqueue] = s
		q.ring = append(q.ring, s)
	}
	s.jobs = append(s.jobs, it)
	q.backlog++
	q.added.Add(1)
	if n := len(q.idle); n > 0 {
		w := q.idle[n-1]
		q.idle = q.idle[:n-1]
		w <- struct{}{}
	} else {
		q.spawnLocked()
	}
	q.mu.Unlock()
	return nil
}

// spawnLocked starts a worker when jobs wait, none is idle and the queue is
// below its concurrency.
func (q *Queue) spawnLocked() {
	for q.backlog > len(q.idle) && q.workers < q.concurrency && !q.closed {
		q.workers++
		q.wg.Add(1)
		go q.worker()
	}
}

// takeLocked removes the next job, taking subqueues in turn.
func (q *Queue) takeLocked() *queued {
	if q.backlog == 0 {
		return nil
	}
	if q.turn >= len(q.ring) {
		q.turn = 0
	}
	s := q.ring[q.turn]
	var it *queued
	if q.opts.LIFO {
		it = s.jobs[len(s.jobs)-1]
		s.jobs[len(s.jobs)-1] = nil
		s.jobs = s.jobs[:len(s.jobs)-1]
	} else {
		it = s.jobs[s.head]
		s.jobs[s.head] = nil
		s.head++
	}
	if s.len() == 0 {
		delete(q.subs, s.key)
		q.ring = append(q.ring[:q.turn], q.ring[q.turn+1:]...)
	} else {
		s.compact()
		q.turn++
	}
	q.backlog--
	if q.adders > 0 {
		close(q.space)
		q.space = make(chan struct{})
	}
	return it
}

func (s *subqueue) compact() {
	if s.head > 32 && s.head*2 > len(s.jobs) {
		n := copy(s.jobs, s.jobs[s.head:])
		clear(s.jobs[n:])
		s.jobs = s.jobs[:n]
		s.head = 0
	}
}

// worker runs jobs until it has idled IdleTimeout above the floor, the
// queue shrank below its worker count, or the queue closed.
func (q *Queue) worker() {
	defer q.wg.Done()
	wake := make(chan struct{}, 1)
	idle := time.NewTimer(q.opts.IdleTimeout)
	defer idle.Stop()
	q.mu.Lock()
	for {
		if q.closed {
			break
		}
		if q.workers > q.concurrency {
			break
		}
		if it := q.takeLocked(); it != nil {
			q.mu.Unlock()
			q.runJob(it)
			q.mu.Lock()
			continue
		}
		q.idle = append(q.idle, wake)
		q.mu.Unlock()
		idle.Reset(q.opts.IdleTimeout)
		select {
		case <-wake:
			q.mu.Lock()
			continue
		case <-idle.C:
		case <-q.ctx.Done():
		}
		q.mu.Lock()
		if q.dropIdleLocked(wake) {
			if q.workers > q.opts.Floor || q.closed {
				break
			}
			continue
		}
		// A job was handed to this worker just as it timed out: take it.
		<-wake
	}
	q.workers--
	q.mu.Unlock()
}

func (q *Queue) dropIdleLocked(w chan struct{}) bool {
	for i, c := range q.idle {
		if c == w {
			q.idle = append(q.idle[:i], q.idle[i+1:]...)
			return true
		}
	}
	return false
}

// runJob runs one job's work and cleanup on the calling worker and hands the
// outcome to its loop.
func (q *Queue) runJob(it *queued) {
	j := &it.job
	start := mono()
	q.wait.record(time.Duration(start - it.added))
	var err error
	if cerr := it.ctx.Err(); cerr != nil {
		err = q.ctxErr(j, cerr, nil)
	} else {
		q.started.Add(1)
		q.running.Add(1)
		err = j.Work(it.ctx)
		if cerr := it.ctx.Err(); cerr != nil {
			err = q.ctxErr(j, cerr, err)
		}
		q.running.Add(-1)
	}
	if j.Cleanup != nil {
		j.Cleanup(err)
	}
	it.cancel()
	d := time.Duration(mono() - start)
	q.run.record(d)
	if th := q.opts.SlowThreshold; th > 0 && d >= th {
		q.slowJobs.Add(1)
		s := SlowCallback{Queue: q.name, Loop: -1, Name: j.Name, Duration: d, At: time.Now()}
		q.slow.add(s)
		if q.opts.OnSlow != nil {
			q.opts.OnSlow(s)
		}
	}
	q.completed.Add(1)
	q.complete(j, err)
}

// ctxErr describes a job whose context ended: deadline or closed queue.
func (q *Queue) ctxErr(j *Job, cerr, werr error) error {
	if cerr == context.DeadlineExceeded {
		q.deadlines.Add(1)
		if werr != nil {
			return fmt.Errorf("eventer: queue %s: job %q: %w: %w", q.name, j.Name, ErrDeadline, werr)
		}
		return fmt.Errorf("eventer: queue %s: job %q: %w: %w", q.name, j.Name, ErrDeadline, cerr)
	}
	q.cancelled.Add(1)
	if werr != nil {
		return fmt.Errorf("eventer: queue %s: job %q: %w: %w", q.name, j.Name, ErrClosed, werr)
	}
	return fmt.Errorf("eventer: queue %s: job %q: %w: %w", q.name, j.Name, ErrClosed, cerr)
}

func (q *Queue) complete(j *Job, err error) {
	if j.Done == nil {
		return
	}
	if j.Loop != nil {
		done := j.Done
		perr := j.Loop.post(posted{fn: func() { done(err) }, cb: j.Loop.pool.callback("job:" + j.Name)})
		if perr == nil {
			return
		}
	}
	// No loop, or its loop has stopped: the owner still learns the outcome.
	j.Done(err)
}

// Close stops the queue: new jobs are refused, waiting jobs complete with an
// error wrapping ErrClosed without running, and running jobs see their
// context cancelled. Close waits for the workers, so for every running job
// to return: a job that ignores its context holds Close up. It is
// idempotent and must not be called from a job.
func (q *Queue) Close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.wg.Wait()
		return
	}
	q.closed = true
	var left []*queued
	for q.backlog > 0 {
		left = append(left, q.takeLocked())
	}
	q.mu.Unlock()
	q.cancel()
	q.wg.Wait()
	for _, it := range left {
		j := &it.job
		err := q.ctxErr(j, context.Canceled, nil)
		if j.Cleanup != nil {
			j.Cleanup(err)
		}
		it.cancel()
		q.complete(j, err)
	}
}
