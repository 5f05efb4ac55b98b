package eventer

import (
	"errors"
	"fmt"
	"github.com/mtev-supervise/mtev-supervise/pkg/stats"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// PoolOptions configure one pool of loops.
type PoolOptions struct {
	// Name of the pool; its loops are "e:<Name>/<index>". Required.
	Name string
	// Concurrency is the number of loops; at least 1.
	Concurrency int
	// Timeout is the heart timeout handed to NewHeart. A loop never waits
	// for events longer than Timeout/20 (nor 200 ms), so its heart stalls
	// only when a callback hangs. Zero: no heart timeout, waits of 200 ms.
	Timeout time.Duration
	// NewHeart, when set, makes one heart per loop.
	NewHeart HeartFunc
	// SlowThreshold: a callback running at least this long is counted and
	// reported to OnSlow and in snapshots. Zero turns reporting off.
	SlowThreshold time.Duration
	// OnSlow, when set, receives each slow callback on the loop that ran it,
	// right after it returns. It must not block.
	OnSlow func(SlowCallback)
	// LockOSThread gives each loop an OS thread of its own, as libmtev's
	// loops have: ThreadID then reports the LWP to blame for a stall, and an
	// idle loop blocks its thread in epoll_pwait2. By default a loop is a
	// goroutine that parks in Go's netpoller when idle, which measured
	// better under CPU contention (see the package documentation); the
	// watchdog finds a stalled loop by its goroutine's pprof label either
	// way.
	LockOSThread bool

	// wait overrides how an idle loop waits (benchmarks compare them).
	wait waitMode
}

// waitMode is how an idle loop waits for its epoll instance.
type waitMode int

const (
	// waitAuto: waitBlocking for locked loops, waitNetpoll otherwise.
	waitAuto waitMode = iota
	// waitBlocking blocks the loop's thread in epoll_pwait2 (epoll_wait
	// before Linux 5.11), as libmtev's loops do.
	waitBlocking
	// waitNetpoll parks the loop goroutine in Go's netpoller until the
	// loop's epoll fd is readable or the wait times out, leaving the
	// thread's P to other goroutines at once.
	waitNetpoll
)

// SlowCallback is a callback that ran longer than its threshold.
type SlowCallback struct {
	Pool     string        `json:"pool,omitempty"`
	Loop     int           `json:"loop"`
	Queue    string        `json:"queue,omitempty"`
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
	At       time.Time     `json:"at"`
}

// slowKeep is how many recent slow callbacks a pool or queue remembers.
const slowKeep = 32

// slowRing remembers the latest slow callbacks; it is touched only when a
// callback was slow, never on the fast path.
type slowRing struct {
	mu   sync.Mutex
	ring []SlowCallback
	next int
}

func (r *slowRing) add(s SlowCallback) {
	r.mu.Lock()
	if len(r.ring) < slowKeep {
		r.ring = append(r.ring, s)
	} else {
		r.ring[r.next] = s
		r.next = (r.next + 1) % slowKeep
	}
	r.mu.Unlock()
}

func (r *slowRing) list() []SlowCallback {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]SlowCallback(nil), r.ring[r.next:]...)
	return append(out, r.ring[:r.next]...)
}

// Pool is a fixed set of loops started and stopped together.
type Pool struct {
	name  string
	opts  PoolOptions
	loops []*Loop
	next  atomic.Uint32

	// callbacks maps a callback name to its latency histogram, shared by
	// the pool's loops. Events look theirs up once, when created.
	callbacks sync.Map // string → *callback
	slow      slowRing
	stats     *stats.Namespace // nil: not registered; set before Start

	mu      sync.Mutex
	state   int // 0 new, 1 running, 2 stopped
	stopped chan struct{}
}

// NewPool checks the options and makes a pool; Start runs it.
func NewPool(opts PoolOptions) (*Pool, error) {
	if err := checkName(opts.Name); err != nil {
		return nil, fmt.Errorf("eventer: pool: %w", err)
	}
	if opts.Concurrency < 1 {
		return nil, fmt.Errorf("eventer: pool %s: concurrency %d: %w", opts.Name, opts.Concurrency, ErrInvalid)
	}
	if opts.Timeout < 0 || opts.SlowThreshold < 0 {
		return nil, fmt.Errorf("eventer: pool %s: negative duration: %w", opts.Name, ErrInvalid)
	}
	p := &Pool{name: opts.Name, opts: opts, stopped: make(chan struct{})}
	for i := 0; i < opts.Concurrency; i++ {
		p.loops = append(p.loops, newLoop(p, i))
	}
	return p, nil
}

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name: %w", ErrInvalid)
	}
	for _, r := range name {
		ok := r == '_' || r == '-' || r == '.' || r == ':' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("name %q: character %q: %w", name, r, ErrInvalid)
		}
	}
	return nil
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// Timeout returns the pool's heart timeout.
func (p *Pool) Timeout() time.Duration { return p.opts.Timeout }

// Len returns the number of loops.
func (p *Pool) Len() int { return len(p.loops) }

// Loop returns loop i, or nil when i is out of range.
func (p *Pool) Loop(i int) *Loop {
	if i < 0 || i >= len(p.loops) {
		return nil
	}
	return p.loops[i]
}

// Loops returns the pool's loops in index order.
func (p *Pool) Loops() []*Loop { return append([]*Loop(nil), p.loops...) }

// Next returns the pool's loops in turn, to spread events with no natural
// owner.
func (p *Pool) Next() *Loop {
	return p.loops[int(p.next.Add(1)-1)%len(p.loops)]
}

// Start runs every loop and returns once all run; if one cannot start, the
// others are stopped again and the error returned. Start on a running pool
// does nothing; on a stopped pool it returns ErrStopped.
func (p *Pool) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.state {
	case 1:
		return nil
	case 2:
		return fmt.Errorf("eventer: pool %s: start: %w", p.name, ErrStopped)
	}
	var errs []error
	ready := make(chan error, len(p.loops))
	for _, l := range p.loops {
		go l.run(p.opts.NewHeart, p.opts.Timeout, ready)
	}
	for range p.loops {
		if err := <-ready; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		p.stopLoops()
		p.state = 2
		close(p.stopped)
		return errors.Join(errs...)
	}
	p.state = 1
	return nil
}

// Stop ends every loop, closing the descriptors they still watch, and waits
// for them. It must not be called from one of the pool's own callbacks.
// Stop is idempotent.
func (p *Pool) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == 2 {
		return
	}
	if p.state == 1 {
		p.stopLoops()
	} else {
		for _, l := range p.loops {
			l.mu.Lock()
			l.stopped = true
			l.mu.Unlock()
		}
	}
	p.state = 2
	close(p.stopped)
}

func (p *Pool) stopLoops() {
	for _, l := range p.loops {
		l.stopping.Store(true)
	}
	for _, l := range p.loops {
		l.stop()
	}
}

// callback is a named callback's latency histogram, shared by the pool's
// loops; events look theirs up once, when they are made.
type callback struct {
	name  string
	probe string // runtime/trace region type: "eventer-callback:<name>"
	lat   latency
}

// callback returns the named callback's record.
func (p *Pool) callback(name string) *callback {
	if c, ok := p.callbacks.Load(name); ok {
		return c.(*callback)
	}
	c, loaded := p.callbacks.LoadOrStore(name, &callback{name: name, probe: "eventer-callback:" + name})
	if !loaded {
		p.registerCallback(c.(*callback))
	}
	return c.(*callback)
}

func (p *Pool) reportSlow(s SlowCallback) {
	p.slow.add(s)
	if p.opts.OnSlow != nil {
		p.opts.OnSlow(s)
	}
}

func (p *Pool) callbackNames() []string {
	var names []string
	p.callbacks.Range(func(k, _ any) bool {
		names = append(names, k.(string))
		return true
	})
	sort.Strings(names)
	return names
}
