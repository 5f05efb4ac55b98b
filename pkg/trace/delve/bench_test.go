package delve

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The HangToTrace figures measure, for a child hung with n parked
// goroutines (the goroutines scenario), the time from "the child is hung"
// to "its goroutines are read":
//
//   - cooperative: a linked child's own goroutine profile, asked for over
//     the dump channel and parsed (what a soft deadline does);
//   - delve: Capture (attach, every goroutine and frame, detach); pause-ms is
//     how long the child was stopped, peak-MiB the benchmark process's peak
//     resident memory during the capture (VmHWM, reset before each capture
//     through /proc/self/clear_refs).
//   - delve-core: DumpCore (pause-ms: the child is stopped only while the core
//     is written) then ReadCore of that core (read-ms, peak-MiB).
//   - base-sigquit: the Go runtime's own dump, SIGQUIT with GOTRACEBACK=all and
//     stderr to a file, timed from the signal to the child's exit.
//
// Run with -benchtime=1x.

func BenchmarkHangToTrace10(b *testing.B)     { benchHangToTrace(b, 10, false) }
func BenchmarkHangToTrace1000(b *testing.B)   { benchHangToTrace(b, 1000, false) }
func BenchmarkHangToTrace10000(b *testing.B)  { benchHangToTrace(b, 10000, true) }
func BenchmarkHangToTrace100000(b *testing.B) { benchHangToTrace(b, 100000, true) }

func benchHangToTrace(b *testing.B, n int, withCore bool) {
	exe := scenarioPath("goroutines")
	b.Run("cooperative", func(b *testing.B) { benchCooperative(b, n) })
	b.Run("delve", func(b *testing.B) {
		c := startChild(b, exe, nil, strconv.Itoa(n))
		var pause, attach, read time.Duration
		var peak float64
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			resetPeakRSS(b)
			b.StartTimer()
			res, err := Capture(context.Background(), c.pid(), Options{})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if got := len(withFrame(res, "main.park5")); got != n {
				b.Fatalf("read %d parked goroutines, want %d", got, n)
			}
			pause += res.Pause
			attach += res.Attach
			read += res.Read
			peak = max(peak, peakRSSMiB(b))
			b.StartTimer()
		}
		b.StopTimer()
		b.ReportMetric(ms(b.Elapsed())/float64(b.N), "ms")
		b.ReportMetric(ms(pause)/float64(b.N), "pause-ms")
		b.ReportMetric(ms(attach)/float64(b.N), "attach-ms")
		b.ReportMetric(ms(read)/float64(b.N), "read-ms")
		b.ReportMetric(peak, "peak-MiB")
	})
	if withCore {
		b.Run("delve-core", func(b *testing.B) { benchCore(b, exe, n, Options{}) })
		// What a supervisor does at a hard stall: the child is killed
		// afterwards, so it is stopped first and the attach does not wait.
		b.Run("delve-core-stopfirst", func(b *testing.B) { benchCore(b, exe, n, Options{StopFirst: true}) })
	}
	b.Run("base-sigquit", func(b *testing.B) {
		dir := b.TempDir()
		var dumped int64
		b.StopTimer()
		for i := range b.N {
			out, err := os.Create(filepath.Join(dir, fmt.Sprintf("stderr.%d", i)))
			if err != nil {
				b.Fatal(err)
			}
			c := startChildNoReady(b, exe, []string{"GOTRACEBACK=all"}, func(cmd *exec.Cmd) { cmd.Stderr = out }, strconv.Itoa(n))
			c.waitReady(60 * time.Second)
			b.StartTimer()
			if err := c.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
				b.Fatal(err)
			}
			if !c.exited(5 * time.Minute) {
				b.Fatal("child did not exit after SIGQUIT")
			}
			b.StopTimer()
			c.reap()
			fi, _ := out.Stat()
			dumped += fi.Size()
			out.Close()
		}
		b.ReportMetric(ms(b.Elapsed())/float64(b.N), "ms")
		b.ReportMetric(float64(dumped)/float64(b.N)/(1<<20), "dump-MiB")
	})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// resetPeakRSS frees what it can and resets the kernel's peak resident set
// size (VmHWM) of this process.
func resetPeakRSS(b *testing.B) {
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset peak RSS: %v", err)
	}
}

// peakRSSMiB is this process's VmHWM in MiB.
func peakRSSMiB(b *testing.B) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// benchCore measures DumpCoreWith (pause-ms) then ReadCore of that core.
func benchCore(b *testing.B, exe string, n int, opts Options) {
	c := startChild(b, exe, nil, strconv.Itoa(n))
	dir := b.TempDir()
	var pause, read time.Duration
	var peak float64
	b.ResetTimer()
	for i := range b.N {
		core := filepath.Join(dir, fmt.Sprintf("core.%d", i))
		p, err := DumpCoreWith(context.Background(), c.pid(), core, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		resetPeakRSS(b)
		b.StartTimer()
		t0 := time.Now()
		res, err := ReadCore(core, exe, Options{})
		read += time.Since(t0)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if got := len(withFrame(res, "main.park5")); got != n {
			b.Fatalf("read %d parked goroutines, want %d", got, n)
		}
		pause += p
		peak = max(peak, peakRSSMiB(b))
		os.Remove(core)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(ms(b.Elapsed())/float64(b.N), "ms")
	b.ReportMetric(ms(pause)/float64(b.N), "pause-ms")
	b.ReportMetric(ms(read)/float64(b.N), "read-ms")
	b.ReportMetric(peak, "peak-MiB")
}
