package watchdog

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/journal"
)

// The respawn child is C, as in the anchor measurements of other
// supervisors: a Go child would add its runtime's start-up to every figure.
var (
	benchOnce  sync.Once
	benchDir   string
	benchChild string
	benchErr   error
)

func respawnChild(b *testing.B) string {
	b.Helper()
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "mtev-bench-")
		if benchErr != nil {
			return
		}
		src, err := filepath.Abs("../../testdata/bench/respawn-child.c")
		if err != nil {
			benchErr = err
			return
		}
		benchChild = filepath.Join(benchDir, "respawn-child")
		out, err := exec.Command("cc", "-O2", "-static", "-o", benchChild, src).CombinedOutput()
		if err != nil {
			out2, err2 := exec.Command("cc", "-O2", "-o", benchChild, src).CombinedOutput()
			if err2 != nil {
				benchErr = fmt.Errorf("cc: %v\n%s\n%s", err2, out, out2)
			}
		}
	})
	if benchErr != nil {
		b.Skipf("cannot build the C respawn child: %v", benchErr)
	}
	return benchChild
}

func TestMain(m *testing.M) {
	if v := os.Getenv(testChildEnv); v == "heart" || v == "heart-silent" {
		os.Exit(heartChild())
	}
	if os.Getenv(peerClientEnv) != "" {
		os.Exit(peerClient())
	}
	if os.Getenv(testChildEnv) == "notify-late" {
		os.Exit(notifyLateChild())
	}
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// starts counts the S lines in a respawn log.
func starts(log string) int {
	b, _ := os.ReadFile(log)
	return bytes.Count(b, []byte("S "))
}

// gaps returns, in milliseconds, the time from each child's exit stamp to
// the next child's start stamp.
func gaps(log string) []float64 {
	f, err := os.Open(log)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []float64
	var lastE int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		tag, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		ns, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		switch tag {
		case "E":
			lastE = ns
		case "S":
			if lastE != 0 {
				out = append(out, float64(ns-lastE)/1e6)
				lastE = 0
			}
		}
	}
	return out
}

func reportGaps(b *testing.B, g []float64, elapsed time.Duration) {
	if len(g) == 0 {
		b.Fatal("no respawns measured")
	}
	slices.Sort(g)
	b.ReportMetric(g[len(g)/2], "median-ms")
	b.ReportMetric(g[min(len(g)-1, len(g)*99/100)], "p99-ms")
	b.ReportMetric(float64(len(g))/elapsed.Seconds(), "restarts/s")
	b.ReportMetric(0, "ns/op")
}

func waitStarts(b *testing.B, log string, n int) {
	deadline := time.Now().Add(2 * time.Minute)
	for starts(log) < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d starts in 2m", starts(log), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkRespawn: child death to the next child's start with zero
// backoff, beside a shell loop and a Go os/exec loop running the same
// child. Run with -benchtime=Nx for N respawns (at least 200 are taken).
func BenchmarkRespawn(b *testing.B) {
	child := respawnChild(b)
	n := func(b *testing.B) int { return max(b.N, 200) + 1 }
	b.Run("supervisor", func(b *testing.B) {
		dir := b.TempDir()
		log := filepath.Join(dir, "events.log")
		jw, _ := journal.Open(JournalDir(dir), journal.Options{NoSync: true})
		s, err := New(Config{Command: []string{child, log}, StateDir: dir, ZeroBackoff: true, Retries: 1 << 30, Span: time.Nanosecond}, Options{Journal: jw})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		t0 := time.Now()
		go func() { done <- s.Serve(context.Background()) }()
		waitStarts(b, log, n(b))
		elapsed := time.Since(t0)
		s.Stop()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		reportGaps(b, gaps(log), elapsed)
	})
	b.Run("base-shloop", func(b *testing.B) {
		log := filepath.Join(b.TempDir(), "events.log")
		cmd := exec.Command("sh", "-c", `while true; do "$0" "$1"; done`, child, log)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		waitStarts(b, log, n(b))
		elapsed := time.Since(t0)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		reportGaps(b, gaps(log), elapsed)
	})
	b.Run("base-goloop", func(b *testing.B) {
		log := filepath.Join(b.TempDir(), "events.log")
		want := n(b)
		t0 := time.Now()
		for range want {
			exec.Command(child, log).Run()
		}
		reportGaps(b, gaps(log), time.Since(t0))
	})
}

// procCPU returns a process's user+system CPU time and resident set size.
func procCPU(pid int) (cpu time.Duration, rssKiB int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	cpu = time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
	st2, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(st2), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKiB, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return cpu, rssKiB, nil
}

// schedCPU sums on-CPU time of all threads from schedstat (ns precision:
// utime/stime ticks are 10 ms and read 0 for an idle process).
func schedCPU(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			v, _ := strconv.ParseInt(f[0], 10, 64)
			total += v
		}
	}
	return time.Duration(total)
}

// BenchmarkIdle: the supervisor's CPU share and RSS while its child sleeps,
// over MTEV_BENCH_IDLE (default 30s) after a 2 s settle, beside a shell
// loop holding the same child. The supervisor is the real mtev-supervise
// binary.
func BenchmarkIdle(b *testing.B) {
	child := respawnChild(b)
	window := 30 * time.Second
	if v := os.Getenv("MTEV_BENCH_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("MTEV_BENCH_IDLE: %v", err)
		}
		window = d
	}
	bin := filepath.Join(b.TempDir(), "mtev-supervise")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/mtev-supervise").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	measure := func(b *testing.B, args ...string) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Env = append(os.Environ(), "MTEV_STATE_DIR="+b.TempDir())
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}()
		time.Sleep(2 * time.Second) // settle: start-up work is not idle cost
		c0 := schedCPU(cmd.Process.Pid)
		time.Sleep(window)
		c1 := schedCPU(cmd.Process.Pid)
		_, rss, err := procCPU(cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(c1-c0)/float64(window)*100, "cpu-%")
		b.ReportMetric(float64(c1-c0)/1e6, "cpu-ms")
		b.ReportMetric(float64(rss), "rss-KiB")
		b.ReportMetric(0, "ns/op")
	}
	log := filepath.Join(b.TempDir(), "events.log")
	b.Run("supervisor", func(b *testing.B) { measure(b, bin, "run", "--name", "idle", "--", child, log, "pause") })
	b.Run("base-shloop", func(b *testing.B) {
		measure(b, "sh", "-c", `while true; do "$0" "$1" pause; done`, child, log)
	})
}
