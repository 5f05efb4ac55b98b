package trace

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/process"
)

// clockTicksMS is the length of one clock tick of /proc/<pid>/stat CPU
// times: USER_HZ is 100 on every Linux architecture Go supports.
const clockTicksMS = 10

// ResourceInterval is the interval SampleResources measures CPU use over.
const ResourceInterval = 100 * time.Millisecond

// starvedShare is the share of the sampling interval the child's threads
// must have spent waiting on a run queue, summed, for Starved to be set.
const starvedShare = 0.5

// SampleResources measures the process pid: RSS, CPU times, threads and
// open fds (-1 when /proc/<pid>/fd cannot be read), and CPU use per
// thread over ResourceInterval (it blocks that long). It returns an error
// wrapping ErrNoProcess when pid does not exist.
func SampleResources(pid int) (*Resources, error) {
	s := NewSampler(pid, SamplerOptions{})
	if _, _, err := s.Sample(); err != nil {
		return nil, err
	}
	time.Sleep(ResourceInterval)
	r, _, err := s.Sample()
	return r, err
}

// SamplerOptions configures a Sampler. The zero value is ready to use.
type SamplerOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ProcDir is the proc file system; "" means "/proc".
	ProcDir string
}

// Sampler samples the resource use of one process and keeps the previous
// sample of every thread, so that each Sample reports CPU use per thread
// and run-queue waits over the interval since the previous one. A
// supervisor samples its child periodically and samples once more at
// incident time. It is safe for concurrent use.
//
// # Starved or deadlocked
//
// A stalled heart has three common causes, told apart by the last interval:
//
//   - deadlock or blocked call: CPUPct near 0 and the threads asleep, not
//     waiting for a CPU;
//   - spin (a loop that never returns to the heart): CPUPct near 100 per
//     spinning thread;
//   - starvation: the threads are runnable but do not get a CPU (an
//     overloaded host, a CPU quota, a pinned CPU set). Starved is set when
//     the time the process's threads spent waiting on a run queue
//     (/proc/<pid>/task/<tid>/schedstat, second field), summed over threads,
//     is at least half the interval: the process wanted at least half a CPU
//     more than it got. Killing a starved process rarely helps, which is why
//     it is recorded. Without schedstat (a kernel without sched_info),
//     Starved is never set.
type Sampler struct {
	pid     int
	now     func() time.Time
	procDir string
	ctx     context.Context // carries procDir to gopsutil

	mu       sync.Mutex
	prev     map[int]threadSample
	prevTime time.Time
}

type threadSample struct {
	utime    uint64 // clock ticks
	stime    uint64 // clock ticks
	ticks    uint64 // utime + stime
	threads  int    // of the process, from its own stat
	rqWaitNS uint64 // time spent runnable but waiting for a CPU
	hasRQ    bool
	state    string
}

// NewSampler returns a sampler of process pid. It does not touch the
// process until Sample.
func NewSampler(pid int, opts SamplerOptions) *Sampler {
	s := &Sampler{pid: pid, now: opts.Now, procDir: opts.ProcDir}
	if s.now == nil {
		s.now = time.Now
	}
	s.ctx = context.Background()
	if s.procDir == "" {
		s.procDir = "/proc"
	} else {
		s.ctx = context.WithValue(s.ctx, common.EnvKey, common.EnvMap{common.HostProcEnvKey: s.procDir})
	}
	return s
}

func init() {
	// The boot time is read once: gopsutil would otherwise read /proc/stat
	// again at every sample for a start time nothing here uses.
	process.EnableBootTimeCache(true)
}

// processTotals reads the process-wide figures through gopsutil: CPU
// times (/proc/<pid>/stat), RSS (statm), threads (status), open
// descriptors (fd; -1 when the directory cannot be read, as for another
// user's process), I/O (io) and direct children. A missing process is an error wrapping
// fs.ErrNotExist.
func processTotals(ctx context.Context, pid int32) (*Resources, error) {
	// A Process caches what it read: a fresh one per sample, so that
	// concurrent samples share nothing.
	p := &process.Process{Pid: pid}
	t, err := p.TimesWithContext(ctx)
	if err != nil {
		return nil, err
	}
	r := &Resources{
		// Clock ticks of 10 ms, as seconds: rounded back to whole ms.
		UserMS:   math.Round(t.User * 1000),
		SystemMS: math.Round(t.System * 1000),
		OpenFDs:  -1,
	}
	if m, err := p.MemoryInfoWithContext(ctx); err == nil {
		r.RSSBytes = m.RSS
	}
	if n, err := p.NumThreadsWithContext(ctx); err == nil {
		r.Threads = int(n)
	}
	if n, err := p.NumFDsWithContext(ctx); err == nil {
		r.OpenFDs = int(n)
	}
	if io, err := p.IOCountersWithContext(ctx); err == nil {
		r.ReadBytes, r.WriteBytes = io.ReadBytes, io.WriteBytes
	}
	if ch, err := p.ChildrenWithContext(ctx); err == nil {
		r.Children = len(ch)
	}
	return r, nil
}

// Sample measures the process now: process totals through gopsutil, each
// thread's state, CPU time and run-queue wait from /proc by hand (see
// readThreads). Resources holds process totals and, when
// there is a previous sample, CPUPct and Starved over the interval since it;
// threads lists every thread with its state and its CPU use over that
// interval. The first Sample has no interval: CPUPct is 0, and CPUMS too.
func (s *Sampler) Sample() (*Resources, []Thread, error) {
	dir := filepath.Join(s.procDir, strconv.Itoa(s.pid))
	r, err := processTotals(s.ctx, int32(s.pid))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("trace: sample pid %d: %w", s.pid, ErrNoProcess)
		}
		return nil, nil, fmt.Errorf("trace: sample pid %d: %w", s.pid, err)
	}
	cur, err := readThreads(filepath.Join(dir, "task"))
	if err != nil {
		return nil, nil, fmt.Errorf("trace: sample pid %d: %w", s.pid, err)
	}
	now := s.now()

	s.mu.Lock()
	prev, prevTime := s.prev, s.prevTime
	s.prev, s.prevTime = cur, now
	s.mu.Unlock()

	var interval time.Duration
	if prev != nil {
		interval = now.Sub(prevTime)
	}
	threads, pct, starved := compareThreads(prev, cur, interval)
	r.CPUPct, r.Starved = pct, starved
	return r, threads, nil
}

// compareThreads computes per-thread CPU use, the process's CPU percentage
// and the starvation verdict between two samples taken interval apart. A
// thread missing from prev counts from zero only if interval is set.
func compareThreads(prev, cur map[int]threadSample, interval time.Duration) (threads []Thread, cpuPct float64, starved bool) {
	tids := make([]int, 0, len(cur))
	for tid := range cur {
		tids = append(tids, tid)
	}
	sort.Ints(tids)
	var totalTicks, rqWait uint64
	rqKnown := false
	for _, tid := range tids {
		c := cur[tid]
		th := Thread{ID: tid, State: c.state}
		if interval > 0 {
			p := prev[tid] // a new thread counts from zero
			if c.ticks >= p.ticks {
				d := c.ticks - p.ticks
				totalTicks += d
				th.CPUMS = float64(d * clockTicksMS)
			}
			if c.hasRQ && c.rqWaitNS >= p.rqWaitNS {
				rqKnown = true
				rqWait += c.rqWaitNS - p.rqWaitNS
			}
		}
		threads = append(threads, th)
	}
	if interval <= 0 {
		return threads, 0, false
	}
	cpuPct = float64(totalTicks*clockTicksMS) / (float64(interval) / float64(time.Millisecond)) * 100
	starved = rqKnown && float64(rqWait) >= starvedShare*float64(interval.Nanoseconds())
	return threads, cpuPct, starved
}

// readThreads reads stat and schedstat of every thread under taskDir.
// Threads that exit while being read are skipped.
//
// Read by hand: gopsutil has no per-thread scheduler wait (schedstat's
// second field, the time runnable but waiting for a CPU) and no
// per-thread state; its per-thread CPU times (Process.Threads) come from
// the same stat file, which is read here once for all three.
func readThreads(taskDir string) (map[int]threadSample, error) {
	ents, err := os.ReadDir(taskDir)
	if err != nil {
		return nil, fmt.Errorf("threads: %w", err)
	}
	out := make(map[int]threadSample, len(ents))
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(taskDir, e.Name(), "stat"))
		if err != nil {
			continue
		}
		ts, err := parseTaskStat(stat)
		if err != nil {
			continue
		}
		if sch, err := os.ReadFile(filepath.Join(taskDir, e.Name(), "schedstat")); err == nil {
			if f := strings.Fields(string(sch)); len(f) >= 2 {
				if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
					ts.rqWaitNS, ts.hasRQ = v, true
				}
			}
		}
		out[tid] = ts
	}
	return out, nil
}

// parseTaskStat parses /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat:
// the state, utime, stime and thread count. The command name may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseTaskStat(b []byte) (threadSample, error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return threadSample{}, errors.New("trace: parse stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	// f[0] state, f[11] utime, f[12] stime, f[17] num_threads.
	if len(f) < 18 {
		return threadSample{}, errors.New("trace: parse stat: too few fields")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return threadSample{}, errors.New("trace: parse stat: bad cpu times")
	}
	n, _ := strconv.Atoi(f[17])
	return threadSample{utime: ut, stime: st, ticks: ut + st, threads: n, state: threadState(f[0])}, nil
}

func threadState(letter string) string {
	switch letter {
	case "R":
		return "running"
	case "S":
		return "sleeping"
	case "D":
		return "disk-sleep"
	case "T":
		return "stopped"
	case "t":
		return "tracing-stop"
	case "Z":
		return "zombie"
	case "X", "x":
		return "dead"
	case "I":
		return "idle"
	}
	return letter
}
