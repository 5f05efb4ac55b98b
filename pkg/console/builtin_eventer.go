package console

import (
	"fmt"
	"io"
	goruntime "runtime"
	"strconv"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
)

func init() {
	Register("show eventer", nil, nil).Describe("pools|debug")
	Register("show eventer pools", showPools, nil).Describe("pools, their loops and heart timeouts")
	Register("show eventer debug", nil, nil).Describe("timers|sockets|jobq|memory")
	Register("show eventer debug timers", showTimers, nil).Describe("pending timers of every loop")
	Register("show eventer debug sockets", showSockets, nil).Describe("descriptors every loop watches")
	Register("show eventer debug jobq", showJobq, completeQueues).Describe("show eventer debug jobq [NAME]: job queues")
	Register("show eventer debug memory", showMemory, nil).Describe("memory of the process (Go runtime)")
	Register("mtev", nil, nil).Describe("jobq")
	Register("mtev jobq", jobqCmd, completeJobq).Describe("mtev jobq NAME concurrency|min|max|floor N")
}

func needEventer(s *Session, what string) (*eventer.System, error) {
	if s.srv.opts.Eventer == nil {
		return nil, unavailable(what)
	}
	return s.srv.opts.Eventer, nil
}

func showPools(s *Session, args []string) error {
	ev, err := needEventer(s, "show eventer pools")
	if err != nil {
		return err
	}
	snap := ev.Snapshot()
	type loop struct {
		Name       string `json:"name"`
		ThreadID   int    `json:"thread_id"`
		Beats      uint64 `json:"beats"`
		Callbacks  uint64 `json:"callbacks"`
		Responsive bool   `json:"responsive"`
		Running    string `json:"running,omitempty"`
	}
	type pool struct {
		Name        string        `json:"name"`
		Concurrency int           `json:"concurrency"`
		Timeout     time.Duration `json:"timeout_ns"`
		Loops       []loop        `json:"loops"`
	}
	var out []pool
	for _, p := range snap.Pools {
		ps := pool{Name: p.Name, Concurrency: p.Concurrency, Timeout: p.Timeout}
		for _, l := range p.Loops {
			lp := loop{Name: l.Name, ThreadID: l.ThreadID, Beats: l.Beats, Callbacks: l.Callbacks, Responsive: l.Responsive}
			if l.Running != nil {
				lp.Running = fmt.Sprintf("%s for %v", l.Running.Name, l.Running.For.Round(time.Millisecond))
			}
			ps.Loops = append(ps.Loops, lp)
		}
		out = append(out, ps)
	}
	return s.Output(out, func(w io.Writer) {
		for _, p := range out {
			fmt.Fprintf(w, "pool %s: %d loops, heart timeout %v\n", p.Name, p.Concurrency, p.Timeout)
			for _, l := range p.Loops {
				state := "ok"
				if !l.Responsive {
					state = "UNRESPONSIVE"
				}
				fmt.Fprintf(w, "  %-16s tid %-7d beats %-8d callbacks %-8d %s", l.Name, l.ThreadID, l.Beats, l.Callbacks, state)
				if l.Running != "" {
					fmt.Fprintf(w, " running %s", l.Running)
				}
				fmt.Fprintln(w)
			}
		}
	})
}

func showTimers(s *Session, args []string) error {
	ev, err := needEventer(s, "show eventer debug timers")
	if err != nil {
		return err
	}
	type timer struct {
		Loop string `json:"loop"`
		eventer.TimerInfo
	}
	out := []timer{}
	for _, p := range ev.Snapshot().Pools {
		for _, l := range p.Loops {
			for _, t := range l.Timers {
				out = append(out, timer{l.Name, t})
			}
		}
	}
	return s.Output(out, func(w io.Writer) {
		fmt.Fprintf(w, "%d timers\n", len(out))
		for _, t := range out {
			fmt.Fprintf(w, "  [%s] fires in %v", t.Name, t.In.Round(time.Microsecond))
			if t.Period > 0 {
				fmt.Fprintf(w, " every %v", t.Period)
			}
			fmt.Fprintf(w, " fired %d t@%s\n", t.Fires, t.Loop)
		}
	})
}

func showSockets(s *Session, args []string) error {
	ev, err := needEventer(s, "show eventer debug sockets")
	if err != nil {
		return err
	}
	type fd struct {
		Loop string `json:"loop"`
		eventer.FDInfo
	}
	out := []fd{}
	for _, p := range ev.Snapshot().Pools {
		for _, l := range p.Loops {
			for _, f := range l.FDs {
				out = append(out, fd{l.Name, f})
			}
		}
	}
	return s.Output(out, func(w io.Writer) {
		fmt.Fprintf(w, "%d descriptors\n", len(out))
		for _, f := range out {
			fmt.Fprintf(w, "  fd: %d [%s] t@%s -> %s\n", f.FD, f.Interest, f.Loop, f.Name)
		}
	})
}

func showJobq(s *Session, args []string) error {
	ev, err := needEventer(s, "show eventer debug jobq")
	if err != nil {
		return err
	}
	if len(args) > 1 {
		return fmt.Errorf("console: usage: show eventer debug jobq [NAME]")
	}
	var out []eventer.QueueSnapshot
	for _, q := range ev.Snapshot().Queues {
		if len(args) == 1 && q.Name != args[0] {
			continue
		}
		q.Wait.Bins, q.Run.Bins = nil, nil
		out = append(out, q)
	}
	if len(args) == 1 && len(out) == 0 {
		return fmt.Errorf("console: no job queue %q", args[0])
	}
	return s.Output(out, func(w io.Writer) {
		for _, q := range out {
			fmt.Fprintf(w, "=== %s ===\n", q.Name)
			fmt.Fprintf(w, " concurrency: %d (min %d, max %d, floor %d)\n", q.Concurrency, q.Min, q.Max, q.Floor)
			fmt.Fprintf(w, " workers: %d (idle %d), running: %d, backlog: %d\n", q.Workers, q.Idle, q.Running, q.Backlog)
			fmt.Fprintf(w, " total jobs: %d, completed: %d, rejected: %d, timed out: %d\n", q.Added, q.Completed, q.Rejected, q.Deadlines)
			fmt.Fprintf(w, " wait: mean %.6fs p99 %.6fs; run: mean %.6fs p99 %.6fs\n", q.Wait.Mean, q.Wait.P99, q.Run.Mean, q.Run.P99)
		}
	})
}

func showMemory(s *Session, args []string) error {
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	v := map[string]uint64{
		"heap_alloc": m.HeapAlloc, "heap_sys": m.HeapSys, "heap_objects": m.HeapObjects,
		"stack_sys": m.StackSys, "sys": m.Sys, "num_gc": uint64(m.NumGC),
		"goroutines": uint64(goruntime.NumGoroutine()),
	}
	return s.Output(v, func(w io.Writer) {
		for _, k := range []string{"goroutines", "heap_alloc", "heap_objects", "heap_sys", "stack_sys", "sys", "num_gc"} {
			fmt.Fprintf(w, "%-13s %d\n", k+":", v[k])
		}
	})
}

func jobqCmd(s *Session, args []string) error {
	ev, err := needEventer(s, "mtev jobq")
	if err != nil {
		return err
	}
	if len(args) != 3 {
		return fmt.Errorf("console: usage: mtev jobq NAME concurrency|min|max|floor N")
	}
	q := ev.Queue(args[0])
	if q == nil {
		return fmt.Errorf("console: no job queue %q", args[0])
	}
	n, err := strconv.Atoi(args[2])
	if err != nil {
		return fmt.Errorf("console: mtev jobq: %q is not a number", args[2])
	}
	var set func(int) error
	switch args[1] {
	case "concurrency":
		set = q.SetConcurrency
	case "min":
		set = q.SetMin
	case "max":
		set = q.SetMax
	case "floor":
		set = q.SetFloor
	default:
		return fmt.Errorf("console: mtev jobq: unknown setting %q (concurrency, min, max, floor)", args[1])
	}
	if err := set(n); err != nil {
		return err
	}
	qs := q.Snapshot()
	v := map[string]any{"name": qs.Name, "concurrency": qs.Concurrency, "min": qs.Min, "max": qs.Max, "floor": qs.Floor}
	return s.Output(v, func(w io.Writer) {
		fmt.Fprintf(w, "%s: concurrency %d (min %d, max %d, floor %d)\n", qs.Name, qs.Concurrency, qs.Min, qs.Max, qs.Floor)
	})
}

func queueNames(s *Session) []string {
	ev := s.srv.opts.Eventer
	if ev == nil {
		return nil
	}
	var out []string
	for _, q := range ev.Snapshot().Queues {
		out = append(out, q.Name)
	}
	return out
}

func completeQueues(s *Session, args []string) []string {
	if len(args) > 1 {
		return nil
	}
	return queueNames(s)
}

func completeJobq(s *Session, args []string) []string {
	switch len(args) {
	case 1:
		return queueNames(s)
	case 2:
		return []string{"concurrency", "min", "max", "floor"}
	}
	return nil
}
