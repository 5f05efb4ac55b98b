package trace

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseTaskStat(t *testing.T) {
	tests := []struct {
		in      string
		ticks   uint64
		state   string
		threads int
		bad     bool
	}{
		{"4242 (api) S 1 4242 4242 0 -1 4194560 900 0 0 0 120 30 0 0 20 0 9 0 100 1000 200", 150, "sleeping", 9, false},
		{"77 (we) ird (name) R 1 77 77 0 -1 4194560 900 0 0 0 5 6 0 0 20 0 1 0 100 1000 200", 11, "running", 1, false},
		{"77 (x) R 1 2", 0, "", 0, true},
		{"no parens", 0, "", 0, true},
		{"1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 1 0 0 20 0 1 0", 0, "", 0, true},
	}
	for _, tc := range tests {
		ts, err := parseTaskStat([]byte(tc.in))
		if (err != nil) != tc.bad {
			t.Errorf("parseTaskStat(%q) err = %v", tc.in, err)
			continue
		}
		if !tc.bad && (ts.ticks != tc.ticks || ts.state != tc.state || ts.threads != tc.threads) {
			t.Errorf("parseTaskStat(%q) = %+v", tc.in, ts)
		}
	}
}

func TestCompareThreads(t *testing.T) {
	s := func(ticks, rq uint64) threadSample {
		return threadSample{ticks: ticks, rqWaitNS: rq, hasRQ: true, state: "running"}
	}
	sec := time.Second
	tests := []struct {
		name     string
		prev     map[int]threadSample
		cur      map[int]threadSample
		interval time.Duration
		pct      float64
		starved  bool
		cpuMS    []float64
	}{
		{"first sample", nil, map[int]threadSample{1: s(100, 0)}, 0, 0, false, []float64{0}},
		{"deadlock: idle, not waiting for a cpu",
			map[int]threadSample{1: s(100, 5e6), 2: s(50, 0)}, map[int]threadSample{1: s(100, 5e6), 2: s(50, 0)}, sec, 0, false, []float64{0, 0}},
		{"spin: one thread busy the whole interval",
			map[int]threadSample{1: s(100, 0), 2: s(50, 0)}, map[int]threadSample{1: s(200, 1e6), 2: s(50, 0)}, sec, 100, false, []float64{1000, 0}},
		{"starved: runnable, waiting on the run queue",
			map[int]threadSample{1: s(100, 0), 2: s(50, 0)}, map[int]threadSample{1: s(110, 4e8), 2: s(55, 3e8)}, sec, 15, true, []float64{100, 50}},
		{"new thread counts from zero",
			map[int]threadSample{1: s(100, 0)}, map[int]threadSample{1: s(100, 0), 3: s(20, 0)}, sec, 20, false, []float64{0, 200}},
		{"no schedstat: never starved",
			map[int]threadSample{1: {ticks: 0}}, map[int]threadSample{1: {ticks: 10}}, sec, 10, false, []float64{100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			threads, pct, starved := compareThreads(tc.prev, tc.cur, tc.interval)
			if pct != tc.pct || starved != tc.starved {
				t.Errorf("pct %v starved %v, want %v %v", pct, starved, tc.pct, tc.starved)
			}
			if len(threads) != len(tc.cpuMS) {
				t.Fatalf("%d threads, want %d", len(threads), len(tc.cpuMS))
			}
			for i, th := range threads {
				if th.CPUMS != tc.cpuMS[i] {
					t.Errorf("thread %d cpu %v, want %v", th.ID, th.CPUMS, tc.cpuMS[i])
				}
			}
		})
	}
}

// writeFakeProc writes a /proc entry for pid under root with the given
// per-thread (utime, runqueue wait) values.
func writeFakeProc(t *testing.T, root string, pid int, threads map[int][2]uint64) {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprint(pid))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "fd"), 0o755))
	for i := 0; i < 3; i++ {
		must(os.WriteFile(filepath.Join(dir, "fd", fmt.Sprint(i)), nil, 0o644))
	}
	var total uint64
	for tid, v := range threads {
		total += v[0]
		td := filepath.Join(dir, "task", fmt.Sprint(tid))
		must(os.MkdirAll(td, 0o755))
		must(os.WriteFile(filepath.Join(td, "stat"), fmt.Appendf(nil, "%d (svc) R 1 1 1 0 -1 0 0 0 0 0 %d 0 0 0 20 0 %d 0", tid, v[0], len(threads)), 0o644))
		must(os.WriteFile(filepath.Join(td, "schedstat"), fmt.Appendf(nil, "0 %d 3\n", v[1]), 0o644))
	}
	// The process's own files as Linux writes them (stat through its
	// start time, vsize and rss; status with its thread count).
	must(os.WriteFile(filepath.Join(dir, "stat"), fmt.Appendf(nil, "%d (svc) R 1 1 1 0 -1 0 0 0 0 0 %d 7 0 0 20 0 %d 0 100 4096000 256\n", pid, total, len(threads)), 0o644))
	must(os.WriteFile(filepath.Join(dir, "status"), fmt.Appendf(nil, "Name:\tsvc\nState:\tR (running)\nPid:\t%d\nThreads:\t%d\n", pid, len(threads)), 0o644))
	must(os.WriteFile(filepath.Join(dir, "statm"), []byte("1000 256 10 1 0 50 0\n"), 0o644))
}

func TestSamplerFakeProc(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewSampler(500, SamplerOptions{ProcDir: root, Now: func() time.Time { return now }})
	writeFakeProc(t, root, 500, map[int][2]uint64{500: {10, 0}, 501: {0, 0}})
	r, threads, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if r.RSSBytes != 256*uint64(os.Getpagesize()) || r.Threads != 2 || r.OpenFDs != 3 || r.UserMS != 100 || r.SystemMS != 70 || r.CPUPct != 0 || len(threads) != 2 {
		t.Errorf("first sample %+v, threads %+v", r, threads)
	}
	// Half a second later both threads ran 100 ms and waited 400 ms for a CPU.
	now = now.Add(500 * time.Millisecond)
	writeFakeProc(t, root, 500, map[int][2]uint64{500: {20, 4e8}, 501: {10, 4e8}})
	r, threads, err = s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if r.CPUPct != 40 || !r.Starved || threads[0].CPUMS != 100 || threads[1].CPUMS != 100 {
		t.Errorf("second sample %+v, threads %+v", r, threads)
	}
	if _, _, err := NewSampler(501, SamplerOptions{ProcDir: root}).Sample(); !errors.Is(err, ErrNoProcess) {
		t.Errorf("missing pid: %v, want ErrNoProcess", err)
	}
}

// startChild runs the test binary as a child with the given behaviour and
// waits until it says it is ready.
func startChild(t *testing.T, behaviour string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+behaviour)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("child %s: %q, %v", behaviour, line, err)
	}
	return cmd
}

// TestSamplerRealChildren tells a spinning child from a sleeping one.
func TestSamplerRealChildren(t *testing.T) {
	spin := startChild(t, "spin")
	sleep := startChild(t, "sleep")
	spinS := NewSampler(spin.Process.Pid, SamplerOptions{})
	sleepS := NewSampler(sleep.Process.Pid, SamplerOptions{})
	for _, s := range []*Sampler{spinS, sleepS} {
		if _, _, err := s.Sample(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	var spinR *Resources
	for {
		r, threads, err := spinS.Sample()
		if err != nil {
			t.Fatal(err)
		}
		var busiest float64
		for _, th := range threads {
			busiest = max(busiest, th.CPUMS)
		}
		if r.CPUPct > 50 && busiest > 0 {
			spinR = r
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spinning child never showed CPU use: %+v", r)
		}
		time.Sleep(100 * time.Millisecond) // sampling interval, not a wait for a condition
	}
	// A fresh interval for the sleeper, after its start-up. Starved is not
	// checked here: a sleeping process's few wake-ups can queue behind
	// other work on a loaded host (TestSamplerStarvedChild covers it).
	if _, _, err := sleepS.Sample(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // sampling interval, not a wait for a condition
	r, _, err := sleepS.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if r.CPUPct >= 50 {
		t.Errorf("sleeping child: %+v", r)
	}
	if spinR.RSSBytes == 0 || spinR.Threads < 1 || spinR.OpenFDs < 3 {
		t.Errorf("spinning child totals: %+v", spinR)
	}
}

// I/O and direct children are part of a sample: a shell that read a file
// and started two sleepers.
func TestSamplerIOAndChildren(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.WriteFile(data, []byte("a line for the shell to read\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `read -r line < "$1"; sleep 60 & sleep 60 & echo started; wait`, "sh", data)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Process.Kill()
		cmd.Wait()
	})
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	var r *Resources
	for deadline := time.Now().Add(10 * time.Second); ; {
		r, _, err = NewSampler(cmd.Process.Pid, SamplerOptions{}).Sample()
		if err != nil {
			t.Fatal(err)
		}
		if r.Children == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // a poll with a deadline
	}
	if r.Children != 2 {
		t.Errorf("children = %d, want 2", r.Children)
	}
	if r.ReadBytes == 0 || r.WriteBytes == 0 {
		t.Errorf("no I/O counted for a shell that read a file and wrote a line: %+v", r)
	}
}

func TestSampleResourcesSelfAndGone(t *testing.T) {
	r, err := SampleResources(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if r.RSSBytes == 0 || r.Threads < 1 || r.OpenFDs < 3 {
		t.Errorf("self: %+v", r)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := SampleResources(cmd.Process.Pid); !errors.Is(err, ErrNoProcess) {
		t.Errorf("reaped child: %v, want ErrNoProcess", err)
	}
}

// TestSamplerStarvedChild: four spinning threads pinned to one CPU are
// reported as starved.
func TestSamplerStarvedChild(t *testing.T) {
	if _, err := os.Stat("/proc/self/schedstat"); err != nil {
		t.Skip("kernel without schedstat")
	}
	child := startChild(t, "starve")
	s := NewSampler(child.Process.Pid, SamplerOptions{})
	if _, _, err := s.Sample(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		time.Sleep(200 * time.Millisecond) // sampling interval, not a wait for a condition
		r, _, err := s.Sample()
		if err != nil {
			t.Fatal(err)
		}
		if r.Starved {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pinned spinning child never reported starved: %+v", r)
		}
	}
}
