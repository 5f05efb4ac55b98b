package rest

import (
	"context"
	"errors"
	"net/http"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
)

// Stall reports a handler that passed its deadline. Its shape is the one
// every subsystem uses to report a hung unit of work; the runtime hands
// it to the supervisor's incident road.
type Stall struct {
	// Source is "http".
	Source string
	// Name is the route's name.
	Name string
	// Detail is the method and request URI.
	Detail string
	// Elapsed is how long the handler had run when reported.
	Elapsed time.Duration
	// Deadline is the route's deadline.
	Deadline time.Duration
	// Labels are the pprof labels of the handler's goroutine
	// (mtev.route, mtev.request, mtev.pool): a goroutine dump finds it by
	// them.
	Labels map[string]string
	// PID is 0: the process itself.
	PID int
	// Hard asks for escalation: too many handlers of one pool are hung.
	Hard bool
}

// poolHung counts the hung handlers of one pool.
type poolHung struct {
	mu sync.Mutex
	n  int
}

func (rt *Router) poolHung(pool string) *poolHung {
	rt.hungMu.Lock()
	defer rt.hungMu.Unlock()
	p := rt.hung[pool]
	if p == nil {
		p = &poolHung{}
		rt.hung[pool] = p
	}
	return p
}

// Hung returns how many handlers are past their deadline and still
// running, by pool.
func (rt *Router) Hung() map[string]int {
	rt.hungMu.Lock()
	defer rt.hungMu.Unlock()
	out := map[string]int{}
	for k, p := range rt.hung {
		p.mu.Lock()
		out[k] = p.n
		p.mu.Unlock()
	}
	return out
}

type panicked struct{ v any }

// supervise runs h on its own goroutine (or as a job on the route's
// queue) under the route's deadline. Past the deadline the stall is
// reported, the client gets 503 with Connection: close (or, when the
// handler had already started its answer, the connection or stream is
// aborted), and the handler is left to finish alone, its late writes
// failing with ErrHandlerTimeout.
func (rt *Router) supervise(ro *route, rw *respWriter, r *http.Request, h http.Handler) {
	x := rw.x
	rw.guarded = true
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	r = r.WithContext(ctx)
	x.Request = r
	labels := map[string]string{"mtev.route": ro.Name, "mtev.request": strconv.FormatUint(uint64(x.ID), 10), "mtev.pool": ro.pool}
	done := make(chan *panicked, 1)
	run := func(context.Context) {
		var p *panicked
		defer func() {
			if v := recover(); v != nil {
				p = &panicked{v}
			}
			rw.mu.Lock()
			late := rw.dead
			rw.mu.Unlock()
			if late {
				ro.hung.mu.Lock()
				ro.hung.n--
				ro.hung.mu.Unlock()
				if p != nil && p.v != http.ErrAbortHandler {
					panic(p.v) // nobody is left to hand it to
				}
			}
			done <- p
		}()
		pprof.Do(ctx, pprof.Labels("mtev.route", labels["mtev.route"], "mtev.request", labels["mtev.request"], "mtev.pool", ro.pool), func(context.Context) {
			h.ServeHTTP(rw, r)
		})
	}
	if ro.queue != nil {
		err := ro.queue.TryAdd(eventer.Job{Name: ro.Name, Work: func(jctx context.Context) error { run(jctx); return nil }})
		if err != nil {
			rw.guarded = false
			rw.Header().Set("Retry-After", "1")
			if errors.Is(err, eventer.ErrBacklogFull) {
				Error(rw, http.StatusServiceUnavailable, "queue %s is full", ro.Queue)
			} else {
				Error(rw, http.StatusServiceUnavailable, "queue %s: %v", ro.Queue, err)
			}
			return
		}
	} else {
		go run(ctx)
	}
	var timeout <-chan time.Time
	if ro.deadline > 0 {
		t := time.NewTimer(ro.deadline - time.Since(x.Start))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case p := <-done:
		if p != nil {
			panic(p.v)
		}
		rw.close()
		return
	case <-timeout:
	}

	rw.mu.Lock()
	select {
	case p := <-done: // finished while we took the lock
		rw.mu.Unlock()
		if p != nil {
			panic(p.v)
		}
		rw.close()
		return
	default:
	}
	rw.dead = true
	ro.hung.mu.Lock()
	ro.hung.n++
	n := ro.hung.n
	ro.hung.mu.Unlock()
	abort := rw.sent || rw.hijacked
	if !abort {
		hd := rw.rw.Header()
		for k := range hd {
			delete(hd, k)
		}
		hd.Set("Connection", "close")
		hd.Set("Retry-After", "1")
		hd.Set("Content-Type", "application/json")
		rw.status = http.StatusServiceUnavailable
		x.Status = rw.status
		rw.sent = true
		rw.rw.WriteHeader(http.StatusServiceUnavailable)
		b := []byte(`{"error":"handler passed its deadline of ` + ro.deadline.String() + `"}` + "\n")
		nw, _ := rw.rw.Write(b)
		rw.written.Add(int64(nw))
	}
	rw.mu.Unlock()
	cancel()
	if rt.opts.OnStall != nil {
		rt.opts.OnStall(Stall{
			Source: "http", Name: ro.Name, Detail: r.Method + " " + r.URL.RequestURI(),
			Elapsed: time.Since(x.Start), Deadline: ro.deadline, Labels: labels,
			Hard: rt.opts.MaxHung > 0 && n > rt.opts.MaxHung,
		})
	}
	if abort {
		panic(http.ErrAbortHandler)
	}
}
