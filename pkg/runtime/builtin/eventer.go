package builtin

import (
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"golang.org/x/sys/unix"
)

// Addr is a socket address in /eventer/sockets.json.
type Addr struct {
	Address string `json:"address"`
	Port    int    `json:"port,omitempty"`
}

// Socket is one entry of /eventer/sockets.json (libmtev's shape, plus the
// loop).
type Socket struct {
	Callback string `json:"callback"`
	FD       int    `json:"fd"`
	Local    *Addr  `json:"local,omitempty"`
	Remote   *Addr  `json:"remote,omitempty"`
	Impl     string `json:"impl"`
	Mask     int    `json:"mask"` // 1 read, 2 write, 4 exception
	Pool     string `json:"eventer_pool"`
	Loop     string `json:"loop"`
}

// TimerEntry is one entry of /eventer/timers.json.
type TimerEntry struct {
	Callback string `json:"callback"`
	Whence   int64  `json:"whence"` // ms since the epoch
	Pool     string `json:"eventer_pool"`
	Loop     string `json:"loop"`
	PeriodMS int64  `json:"period_ms,omitempty"`
	Fires    uint64 `json:"fires"`
}

// JobQ is one queue of /eventer/jobq.json.
type JobQ struct {
	Concurrency        int     `json:"concurrency"`
	Mode               string  `json:"mode"`
	DesiredConcurrency int     `json:"desired_concurrency"`
	MinConcurrency     int     `json:"min_concurrency"`
	MaxConcurrency     int     `json:"max_concurrency"`
	TotalJobs          uint64  `json:"total_jobs"`
	Backlog            int     `json:"backlog"`
	Inflight           int64   `json:"inflight"`
	Timeouts           uint64  `json:"timeouts"`
	AvgWaitMS          float64 `json:"avg_wait_ms"`
	AvgRunMS           float64 `json:"avg_run_ms"`
}

func (s *server) snapshot(w http.ResponseWriter) (eventer.Snapshot, bool) {
	if s.o.Eventer == nil {
		jsonError(w, http.StatusNotFound, "eventer: %v", errMissing)
		return eventer.Snapshot{}, false
	}
	return s.o.Eventer.Snapshot(), true
}

func maskOf(interest string) int {
	m := 0
	if strings.Contains(interest, "r") {
		m |= 1
	}
	if strings.Contains(interest, "w") {
		m |= 2
	}
	if strings.Contains(interest, "e") {
		m |= 4
	}
	return m
}

func sockAddr(sa unix.Sockaddr) *Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &Addr{Address: ipString(a.Addr[:]), Port: a.Port}
	case *unix.SockaddrInet6:
		return &Addr{Address: ipString(a.Addr[:]), Port: a.Port}
	case *unix.SockaddrUnix:
		return &Addr{Address: a.Name}
	}
	return nil
}

func (s *server) socketsJSON(w http.ResponseWriter, r *http.Request) {
	snap, ok := s.snapshot(w)
	if !ok {
		return
	}
	out := []Socket{}
	for _, p := range snap.Pools {
		for _, l := range p.Loops {
			for _, f := range l.FDs {
				so := Socket{Callback: f.Name, FD: f.FD, Impl: "epoll", Mask: maskOf(f.Interest), Pool: p.Name, Loop: l.Name}
				// The descriptor may have closed since the snapshot:
				// then it simply has no addresses.
				if sa, err := unix.Getsockname(f.FD); err == nil {
					so.Local = sockAddr(sa)
				}
				if sa, err := unix.Getpeername(f.FD); err == nil {
					so.Remote = sockAddr(sa)
				}
				out = append(out, so)
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) timersJSON(w http.ResponseWriter, r *http.Request) {
	snap, ok := s.snapshot(w)
	if !ok {
		return
	}
	out := []TimerEntry{}
	for _, p := range snap.Pools {
		for _, l := range p.Loops {
			for _, t := range l.Timers {
				out = append(out, TimerEntry{
					Callback: t.Name, Whence: snap.Taken.Add(t.In).UnixMilli(), Pool: p.Name, Loop: l.Name,
					PeriodMS: t.Period.Milliseconds(), Fires: t.Fires,
				})
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) jobqJSON(w http.ResponseWriter, r *http.Request) {
	if s.o.Eventer == nil {
		jsonError(w, http.StatusNotFound, "eventer: %v", errMissing)
		return
	}
	out := map[string]JobQ{}
	for _, q := range s.o.Eventer.Snapshot().Queues {
		mode := "FIFO"
		if q.LIFO {
			mode = "LIFO"
		}
		out[q.Name] = JobQ{
			Concurrency: q.Workers, Mode: mode, DesiredConcurrency: q.Concurrency,
			MinConcurrency: q.Min, MaxConcurrency: q.Max, TotalJobs: q.Completed,
			Backlog: q.Backlog, Inflight: q.Running, Timeouts: q.Deadlines,
			AvgWaitMS: q.Wait.Mean * 1e3, AvgRunMS: q.Run.Mean * 1e3,
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// eventerMemoryJSON serves /eventer/memory.json. libmtev counts its event
// structures ({"eventer_t":{"current","total"}}); ours are timers and
// descriptors (current) and callbacks run (total).
func (s *server) eventerMemoryJSON(w http.ResponseWriter, r *http.Request) {
	snap, ok := s.snapshot(w)
	if !ok {
		return
	}
	var current, total uint64
	var timers, fds int
	for _, p := range snap.Pools {
		for _, l := range p.Loops {
			timers += len(l.Timers)
			fds += len(l.FDs)
			total += l.Callbacks
		}
	}
	current = uint64(timers + fds)
	writeJSON(w, http.StatusOK, map[string]any{
		"eventer_t": map[string]uint64{"current": current, "total": total},
		"timers":    map[string]int{"current": timers},
		"fds":       map[string]int{"current": fds},
	})
}

// LogLine is one entry of /eventer/logs/<name>.json.
type LogLine struct {
	Idx    uint64 `json:"idx"`
	Whence int64  `json:"whence"` // ms since the epoch, when written
	Line   string `json:"line"`
}

// ring finds the memory outlet named by the request path
// (.../logs/<name>.json or .ws).
func (s *server) ring(w http.ResponseWriter, r *http.Request, ext string) (*log.Ring, string, bool) {
	name := strings.TrimSuffix(path.Base(r.URL.Path), ext)
	var ring *log.Ring
	if s.o.Logs != nil {
		ring, _ = s.o.Logs.Sink(name).(*log.Ring)
	}
	if ring == nil {
		jsonError(w, http.StatusNotFound, "log '%s' not found", name)
		return nil, name, false
	}
	return ring, name, true
}

// logsJSON serves /eventer/logs/<name>.json?since=ID&last=N: the lines
// with idx > since, at most the last N of them. libmtev returns N-1 lines
// for last=N; we return N.
func (s *server) logsJSON(w http.ResponseWriter, r *http.Request) {
	ring, _, ok := s.ring(w, r, ".json")
	if !ok {
		return
	}
	q := r.URL.Query()
	var since uint64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			jsonError(w, http.StatusBadRequest, "since=%q: want a line index", v)
			return
		}
		since = n
	}
	last := -1
	if v := q.Get("last"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			jsonError(w, http.StatusBadRequest, "last=%q: want a count", v)
			return
		}
		last = n
	}
	lines := ring.Since(since + 1)
	if last >= 0 && len(lines) > last {
		lines = lines[len(lines)-last:]
	}
	out := make([]LogLine, 0, len(lines))
	for _, l := range lines {
		out = append(out, LogLine{Idx: l.Seq, Whence: l.Time.UnixMilli(), Line: string(l.Data)})
	}
	writeJSON(w, http.StatusOK, out)
}

func ipString(b []byte) string {
	var a netip.Addr
	if len(b) == 4 {
		a = netip.AddrFrom4([4]byte(b))
	} else {
		a = netip.AddrFrom16([16]byte(b)).Unmap()
	}
	return a.String()
}

// PoolInfo is one pool of /eventer/pools.json (ours; libmtev has none).
type PoolInfo struct {
	Name        string     `json:"name"`
	Concurrency int        `json:"concurrency"`
	TimeoutMS   int64      `json:"timeout_ms"`
	CycleP50    float64    `json:"cycletime_p50"`
	CycleP99    float64    `json:"cycletime_p99"`
	Loops       []LoopInfo `json:"loops"`
}

// LoopInfo is one loop of a pool.
type LoopInfo struct {
	Name       string  `json:"name"`
	ThreadID   int     `json:"thread_id,omitempty"`
	Beats      uint64  `json:"beats"`
	Callbacks  uint64  `json:"callbacks"`
	Slow       uint64  `json:"slow"`
	Responsive bool    `json:"responsive"`
	Running    string  `json:"running,omitempty"`
	RunningMS  float64 `json:"running_ms,omitempty"`
	Timers     int     `json:"timers"`
	FDs        int     `json:"fds"`
}

// poolsJSON serves /eventer/pools.json: pools and their loops.
func (s *server) poolsJSON(w http.ResponseWriter, r *http.Request) {
	snap, ok := s.snapshot(w)
	if !ok {
		return
	}
	out := []PoolInfo{}
	for _, p := range snap.Pools {
		pi := PoolInfo{Name: p.Name, Concurrency: p.Concurrency, TimeoutMS: p.Timeout.Milliseconds(), CycleP50: p.Cycle.P50, CycleP99: p.Cycle.P99, Loops: []LoopInfo{}}
		for _, l := range p.Loops {
			li := LoopInfo{Name: l.Name, ThreadID: l.ThreadID, Beats: l.Beats, Callbacks: l.Callbacks, Slow: l.Slow, Responsive: l.Responsive, Timers: len(l.Timers), FDs: len(l.FDs)}
			if l.Running != nil {
				li.Running = l.Running.Name
				li.RunningMS = float64(l.Running.For) / 1e6
			}
			pi.Loops = append(pi.Loops, li)
		}
		out = append(out, pi)
	}
	writeJSON(w, http.StatusOK, out)
}

// logsList serves /eventer/logs.json: the memory outlets (ours).
func (s *server) logsList(w http.ResponseWriter, r *http.Request) {
	out := []string{}
	if s.o.Logs != nil {
		for _, st := range s.o.Logs.Stats() {
			if _, ok := s.o.Logs.Sink(st.Name).(*log.Ring); ok {
				out = append(out, st.Name)
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}
