package eventer

import (
	"context"
	"errors"
	"fmt"
	"github.com/mtev-supervise/mtev-supervise/pkg/stats"
	"runtime"
	"sort"
	"sync"
	"time"
)

// Names of the built-in pool and queue.
const (
	DefaultPool  = "default"
	DefaultQueue = "default_queue"
)

// Defaults, from libmtev.
const (
	DefaultTimeout      = 5 * time.Second // heart timeout of a pool
	DefaultQueueThreads = 5               // default_queue concurrency
)

// Options configure a System. The zero value is usable: a default pool of
// 1+4×NumCPU loops and a default queue of 5 workers.
type Options struct {
	// Concurrency of the default pool; zero means 1+4×runtime.NumCPU().
	Concurrency int
	// Timeout is the default pool's heart timeout; zero means 5 s.
	Timeout time.Duration
	// Pools are the named pools. One named "default" replaces the default
	// pool's concurrency and timeout, and sets whether its loops are locked
	// to OS threads. A pool with zero concurrency gets the
	// default pool's, one with zero timeout the default timeout.
	Pools []PoolOptions
	// Queues are the named job queues. One named "default_queue" replaces
	// the built-in one.
	Queues []QueueOptions
	// DefaultQueueThreads is the default queue's concurrency; zero means 5.
	DefaultQueueThreads int
	// LIFO makes queues configured without an explicit ordering LIFO
	// (libmtev's default_jobq_ordering).
	LIFO bool
	// LoopSlowThreshold and QueueSlowThreshold are the thresholds above which
	// loop callbacks and jobs are reported as slow (libmtev's
	// show_loop_callbacks_threshold and show_jobq_callbacks_threshold).
	LoopSlowThreshold, QueueSlowThreshold time.Duration
	// OnSlow receives slow callbacks and jobs; it must not block.
	OnSlow func(SlowCallback)
	// NewHeart makes one heart per loop; nil: loops have no heart.
	NewHeart HeartFunc
	// NoFileLimit is the wanted RLIMIT_NOFILE (libmtev's rlim_nofiles):
	// Start raises the soft limit (and the hard one, when allowed) to it,
	// never lowering either. A limit that cannot be reached is not fatal:
	// Start goes as far as the hard limit and System.NoFileLimit reports
	// the shortfall.
	NoFileLimit int
	// Debugging is libmtev's eventer debugging switch: every callback and
	// every job is handed to OnSlow with its duration (both slow thresholds
	// become one nanosecond), so the layer that logs OnSlow traces each
	// dispatch, as libmtev's debugging does.
	Debugging bool
	// Stats is where the pools and queues register their histograms and
	// counters (libmtev's mtev/eventer namespace, see stats.go); nil
	// registers nothing.
	Stats *stats.Namespace
	// SnapshotWait bounds how long Snapshot waits for a loop to describe its
	// timers and descriptors; a loop that does not answer in time is shown as
	// unresponsive. Zero means 100 ms.
	SnapshotWait time.Duration
}

// System is the eventer of a process: its pools of loops and its job queues.
type System struct {
	opts    Options
	pools   []*Pool
	byPool  map[string]*Pool
	mu      sync.Mutex
	queues  []*Queue
	byQueue map[string]*Queue
	state   int // 0 new, 1 running, 2 stopped

	nofile    int // RLIMIT_NOFILE after Start raised it (under mu)
	nofileErr error
}

// NoFileLimit returns the soft RLIMIT_NOFILE that Start left in effect when
// Options.NoFileLimit was set (0 otherwise), and why it falls short of the
// wanted limit, if it does.
func (s *System) NoFileLimit() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nofile, s.nofileErr
}

// New checks the options and builds the system; Start runs it.
func New(opts Options) (*System, error) {
	if opts.Concurrency == 0 {
		opts.Concurrency = 1 + 4*runtime.NumCPU()
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.DefaultQueueThreads == 0 {
		opts.DefaultQueueThreads = DefaultQueueThreads
	}
	if opts.SnapshotWait == 0 {
		opts.SnapshotWait = 100 * time.Millisecond
	}
	if opts.Debugging {
		opts.LoopSlowThreshold, opts.QueueSlowThreshold = 1, 1
	}
	s := &System{opts: opts, byPool: map[string]*Pool{}, byQueue: map[string]*Queue{}}
	pools := []PoolOptions{{Name: DefaultPool, Concurrency: opts.Concurrency, Timeout: opts.Timeout}}
	for _, po := range opts.Pools {
		if po.Name == DefaultPool {
			if po.Concurrency != 0 {
				pools[0].Concurrency = po.Concurrency
			}
			if po.Timeout != 0 {
				pools[0].Timeout = po.Timeout
			}
			pools[0].LockOSThread = po.LockOSThread
			continue
		}
		pools = append(pools, po)
	}
	for _, po := range pools {
		if po.Concurrency == 0 {
			po.Concurrency = pools[0].Concurrency
		}
		if po.Timeout == 0 {
			po.Timeout = opts.Timeout
		}
		if po.NewHeart == nil {
			po.NewHeart = opts.NewHeart
		}
		if po.SlowThreshold == 0 {
			po.SlowThreshold = opts.LoopSlowThreshold
		}
		if po.OnSlow == nil {
			po.OnSlow = opts.OnSlow
		}
		if _, dup := s.byPool[po.Name]; dup {
			return nil, fmt.Errorf("eventer: pool %s: defined twice: %w", po.Name, ErrInvalid)
		}
		p, err := NewPool(po)
		if err != nil {
			return nil, err
		}
		p.registerStats(opts.Stats)
		s.pools = append(s.pools, p)
		s.byPool[po.Name] = p
	}
	queues := []QueueOptions{{Name: DefaultQueue, Concurrency: opts.DefaultQueueThreads, LIFO: opts.LIFO}}
	for _, qo := range opts.Queues {
		if qo.Name == DefaultQueue {
			queues[0] = qo
			continue
		}
		queues = append(queues, qo)
	}
	for _, qo := range queues {
		if _, err := s.addQueue(qo); err != nil {
			for _, q := range s.queues {
				q.Close()
			}
			return nil, err
		}
	}
	return s, nil
}

func (s *System) addQueue(qo QueueOptions) (*Queue, error) {
	if qo.SlowThreshold == 0 {
		qo.SlowThreshold = s.opts.QueueSlowThreshold
	}
	if qo.OnSlow == nil {
		qo.OnSlow = s.opts.OnSlow
	}
	if _, dup := s.byQueue[qo.Name]; dup {
		return nil, fmt.Errorf("eventer: queue %s: defined twice: %w", qo.Name, ErrInvalid)
	}
	q, err := NewQueue(qo)
	if err != nil {
		return nil, err
	}
	q.registerStats(s.opts.Stats)
	s.queues = append(s.queues, q)
	s.byQueue[qo.Name] = q
	return q, nil
}

// NewQueue adds a job queue to a system that has not stopped.
func (s *System) NewQueue(opts QueueOptions) (*Queue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == 2 {
		return nil, fmt.Errorf("eventer: queue %s: %w", opts.Name, ErrStopped)
	}
	return s.addQueue(opts)
}

// Options returns the options in effect, defaults filled in.
func (s *System) Options() Options { return s.opts }

// Start runs every pool. It is all-or-nothing: if one pool cannot start, the
// pools already started are stopped again. Once every pool runs, the first
// Start invokes StartedHook on the calling goroutine.
func (s *System) Start() error {
	started, err := s.start()
	if started {
		StartedHook.Invoke(s)
	}
	return err
}

func (s *System) start() (started bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case 1:
		return false, nil
	case 2:
		return false, fmt.Errorf("eventer: start: %w", ErrStopped)
	}
	if s.opts.NoFileLimit > 0 {
		s.nofile, s.nofileErr = raiseNoFile(s.opts.NoFileLimit)
	}
	for i, p := range s.pools {
		if err := p.Start(); err != nil {
			for _, q := range s.pools[:i] {
				q.Stop()
			}
			s.stopLocked()
			return false, err
		}
	}
	s.state = 1
	return true, nil
}

// Stop closes every queue (waiting for their workers, so that completions
// still reach their loops) and then stops every pool. It must not be called
// from a loop callback or a job. Stop is idempotent.
func (s *System) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *System) stopLocked() {
	if s.state == 2 {
		return
	}
	s.state = 2
	var wg sync.WaitGroup
	for _, q := range s.queues {
		wg.Add(1)
		go func() { defer wg.Done(); q.Close() }()
	}
	wg.Wait()
	for _, p := range s.pools {
		p.Stop()
	}
}

// Serve starts the system, runs until ctx ends, then stops it.
func (s *System) Serve(ctx context.Context) error {
	if err := s.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	s.Stop()
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil
	}
	return ctx.Err()
}

// Pool returns the named pool, or nil.
func (s *System) Pool(name string) *Pool { return s.byPool[name] }

// Pools returns every pool, the default first.
func (s *System) Pools() []*Pool { return append([]*Pool(nil), s.pools...) }

// Default returns the default pool.
func (s *System) Default() *Pool { return s.pools[0] }

// Queue returns the named queue, or nil.
func (s *System) Queue(name string) *Queue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byQueue[name]
}

// Snapshot types: JSON-friendly views of the eventer, for the console and
// the HTTP layer.

// Snapshot is the state of a whole system.
type Snapshot struct {
	Taken  time.Time       `json:"taken"`
	Pools  []PoolSnapshot  `json:"pools"`
	Queues []QueueSnapshot `json:"queues"`
}

// PoolSnapshot describes a pool.
type PoolSnapshot struct {
	Name        string               `json:"name"`
	Concurrency int                  `json:"concurrency"`
	Timeout     time.Duration        `json:"timeout_ns"`
	Loops       []LoopSnapshot       `json:"loops"`
	Cycle       Histogram            `json:"cycletime"`
	Callbacks   map[string]Histogram `json:"callbacks"`
	Slow        []SlowCallback       `json:"slow,omitempty"`
}

// LoopSnapshot describes a loop. Timers and FDs are filled only when the loop
// answered in time (Responsive).
type LoopSnapshot struct {
	Name       string      `json:"name"`
	Index      int         `json:"index"`
	ThreadID   int         `json:"thread_id"`
	Beats      uint64      `json:"beats"`
	Callbacks  uint64      `json:"callbacks"`
	Slow       uint64      `json:"slow"`
	Responsive bool        `json:"responsive"`
	Running    *Running    `json:"running,omitempty"`
	Timers     []TimerInfo `json:"timers"`
	FDs        []FDInfo    `json:"fds"`
	Cycle      Histogram   `json:"cycletime"`
}

// Running is the callback a loop is in when the snapshot is taken.
type Running struct {
	Name string        `json:"name"`
	For  time.Duration `json:"for_ns"`
}

// TimerInfo describes a pending timer.
type TimerInfo struct {
	Name   string        `json:"name"`
	In     time.Duration `json:"in_ns"`
	Period time.Duration `json:"period_ns,omitempty"`
	Fires  uint64        `json:"fires"`
}

// FDInfo describes a watched descriptor.
type FDInfo struct {
	FD       int    `json:"fd"`
	Name     string `json:"name"`
	Interest string `json:"interest"` // "rw-" style: read, write, exception
}

// QueueSnapshot describes a job queue.
type QueueSnapshot struct {
	Name         string         `json:"name"`
	Concurrency  int            `json:"concurrency"`
	Min          int            `json:"min"`
	Max          int            `json:"max"`
	Floor        int            `json:"floor"`
	LIFO         bool           `json:"lifo"`
	Workers      int            `json:"workers"`
	Idle         int            `json:"idle"`
	Running      int64          `json:"running"`
	Backlog      int            `json:"backlog"`
	BacklogLimit int            `json:"backlog_limit"`
	Subqueues    int            `json:"subqueues"`
	Added        uint64         `json:"added"`
	Started      uint64         `json:"started"`
	Completed    uint64         `json:"completed"`
	Rejected     uint64         `json:"rejected"`
	Deadlines    uint64         `json:"deadlines"`
	Cancelled    uint64         `json:"cancelled"`
	SlowJobs     uint64         `json:"slow_jobs"`
	Wait         Histogram      `json:"wait"`
	Run          Histogram      `json:"latency"`
	Slow         []SlowCallback `json:"slow,omitempty"`
}

// Snapshot describes the whole system. It never blocks on a stuck loop for
// longer than SnapshotWait.
func (s *System) Snapshot() Snapshot {
	snap := Snapshot{Taken: time.Now()}
	for _, p := range s.pools {
		snap.Pools = append(snap.Pools, p.Snapshot(s.opts.SnapshotWait))
	}
	s.mu.Lock()
	queues := append([]*Queue(nil), s.queues...)
	s.mu.Unlock()
	for _, q := range queues {
		snap.Queues = append(snap.Queues, q.Snapshot())
	}
	return snap
}

// Snapshot describes the pool, waiting at most wait for its loops to list
// their timers and descriptors (all loops are asked at once).
func (p *Pool) Snapshot(wait time.Duration) PoolSnapshot {
	ps := PoolSnapshot{
		Name:        p.name,
		Concurrency: len(p.loops),
		Timeout:     p.opts.Timeout,
		Callbacks:   map[string]Histogram{},
		Slow:        p.slow.list(),
	}
	type answer struct {
		timers []TimerInfo
		fds    []FDInfo
	}
	chans := make([]chan answer, len(p.loops))
	for i, l := range p.loops {
		ch := make(chan answer, 1)
		chans[i] = ch
		_ = l.post(posted{internal: true, fn: func() {
			var a answer
			now := mono()
			for _, t := range l.timers {
				if !t.dead.Load() {
					a.timers = append(a.timers, TimerInfo{Name: t.cb.name, In: time.Duration(t.when - now), Period: t.period, Fires: t.fires.Load()})
				}
			}
			sort.Slice(a.timers, func(i, j int) bool { return a.timers[i].In < a.timers[j].In })
			for fd, f := range l.fds {
				if !f.closed.Load() {
					a.fds = append(a.fds, FDInfo{FD: fd, Name: f.cb.name, Interest: f.interest.String()})
				}
			}
			sort.Slice(a.fds, func(i, j int) bool { return a.fds[i].FD < a.fds[j].FD })
			ch <- a
		}})
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	merged := p.loops[0].cycle.histogram()
	expired := false
	for i, l := range p.loops {
		ls := LoopSnapshot{
			Name:      l.name,
			Index:     l.index,
			ThreadID:  l.ThreadID(),
			Beats:     l.beats.Load(),
			Callbacks: l.callbacks.Load(),
			Slow:      l.slow.Load(),
			Cycle:     l.cycle.summary(),
			Timers:    []TimerInfo{},
			FDs:       []FDInfo{},
		}
		if i > 0 {
			merged.Merge(ls.Cycle.Raw)
		}
		if t0 := l.curStart.Load(); t0 != 0 {
			if cb := l.curCB.Load(); cb != nil {
				ls.Running = &Running{Name: cb.name, For: time.Duration(mono() - t0)}
			}
		}
		var a answer
		if expired {
			// The wait is used up: take only answers already given.
			select {
			case a = <-chans[i]:
				ls.Responsive = true
			default:
			}
		} else {
			select {
			case a = <-chans[i]:
				ls.Responsive = true
			case <-deadline.C:
				expired = true
			}
		}
		if a.timers != nil {
			ls.Timers = a.timers
		}
		if a.fds != nil {
			ls.FDs = a.fds
		}
		ps.Loops = append(ps.Loops, ls)
	}
	ps.Cycle = summarize(merged)
	for _, name := range p.callbackNames() {
		ps.Callbacks[name] = p.callback(name).lat.summary()
	}
	return ps
}

// Snapshot describes the queue.
func (q *Queue) Snapshot() QueueSnapshot {
	q.mu.Lock()
	qs := QueueSnapshot{
		Name:         q.name,
		Concurrency:  q.concurrency,
		Min:          q.opts.Min,
		Max:          q.opts.Max,
		Floor:        q.opts.Floor,
		LIFO:         q.opts.LIFO,
		Workers:      q.workers,
		Idle:         len(q.idle),
		Backlog:      q.backlog,
		BacklogLimit: q.opts.Backlog,
		Subqueues:    len(q.ring),
	}
	q.mu.Unlock()
	qs.Running = q.running.Load()
	qs.Added = q.added.Load()
	qs.Started = q.started.Load()
	qs.Completed = q.completed.Load()
	qs.Rejected = q.rejected.Load()
	qs.Deadlines = q.deadlines.Load()
	qs.Cancelled = q.cancelled.Load()
	qs.SlowJobs = q.slowJobs.Load()
	qs.Wait = q.wait.summary()
	qs.Run = q.run.summary()
	qs.Slow = q.slow.list()
	return qs
}
