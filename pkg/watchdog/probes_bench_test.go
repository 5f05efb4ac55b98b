package watchdog

import (
	"bytes"
	"context"
	"fmt"
	"github.com/mtev-supervise/mtev-supervise/internal/testport"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// buildHTTPHang builds the scenario server the probe figures watch.
func buildHTTPHang(b *testing.B) string {
	b.Helper()
	exe := filepath.Join(b.TempDir(), "http-hang")
	if out, err := exec.Command("go", "build", "-o", exe, "../../testdata/scenarios/http-hang").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return exe
}

// BenchmarkProbeDetection: from the moment a Go HTTP server deadlocks
// (a request to its /hang) to the Stalled event and to the incident's
// record (captured from outside with Delve), with an HTTP liveness probe
// every 100ms, timeout 100ms, 3 failures. bound-ms is the theoretical
// bound of the detection: the first failing probe starts at most one
// interval after the hang, the third one ends at most two intervals and a
// timeout after that (3 x 100 + 100 ms). Run with -benchtime=Nx.
func BenchmarkProbeDetection(b *testing.B) {
	exe := buildHTTPHang(b)
	const interval, timeout, failures = 100 * time.Millisecond, 100 * time.Millisecond, 3
	b.Run("http", func(b *testing.B) {
		var stall, record time.Duration
		for range b.N {
			s, r := hangToRecord(b, exe, ProbeConfig{Interval: interval, Timeout: timeout, Failures: failures})
			stall += s
			record += r
		}
		b.ReportMetric(float64(stall.Milliseconds())/float64(b.N), "hang-to-stall-ms")
		b.ReportMetric(float64(record.Milliseconds())/float64(b.N), "hang-to-record-ms")
		b.ReportMetric(float64((failures*interval + timeout).Milliseconds()), "bound-ms")
		b.ReportMetric(0, "ns/op")
	})
}

// hangToRecord runs the server under a supervisor with an HTTP probe,
// hangs it once it is ready, and returns the times from the hang to the
// Stalled and Recorded events.
func hangToRecord(b *testing.B, exe string, probe ProbeConfig) (stall, record time.Duration) {
	port := freePortB(b)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	probe.Target = base + "/"
	var mu sync.Mutex
	var stalledAt, recordedAt time.Time
	ready := make(chan struct{})
	recorded := make(chan struct{})
	dir := b.TempDir()
	s, err := New(Config{
		Name:         "probe-detect",
		Command:      []string{exe, "-addr", fmt.Sprintf("127.0.0.1:%d", port)},
		StateDir:     dir,
		Hearts:       HeartsOff,
		Restart:      RestartNever,
		StartupProbe: ProbeConfig{Target: "tcp://127.0.0.1:" + strconv.Itoa(port), Interval: 10 * time.Millisecond, Failures: 3000},
		Probe:        probe,
	}, Options{Events: func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		switch e := e.(type) {
		case Ready:
			close(ready)
		case Stalled:
			stalledAt = time.Now()
		case Recorded:
			if e.Record.Reason == trace.ReasonStall {
				recordedAt = time.Now()
				close(recorded)
			}
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	defer func() { s.Stop(); <-done }()
	select {
	case <-ready:
	case <-time.After(time.Minute):
		b.Fatal("the server was not ready within a minute")
	}
	// One liveness probe passes first: the hang comes to a watched server.
	for {
		st, err := s.Status()
		if err != nil {
			b.Fatal(err)
		}
		if len(st.Probes) == 2 && st.Probes[1].Probes > st.Probes[1].Failed {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	hangAt := time.Now()
	go func() {
		resp, err := (&http.Client{Timeout: time.Minute}).Get(base + "/hang")
		if err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-recorded:
	case <-time.After(time.Minute):
		b.Fatal("no record within a minute of the hang")
	}
	mu.Lock()
	defer mu.Unlock()
	recs := readRecords(b, dir)
	if len(recs) == 0 || recs[len(recs)-1].Stall == nil || recs[len(recs)-1].Stall.Source != trace.SourceProbe {
		b.Fatalf("no probe stall recorded: %+v", recs)
	}
	if rec := recs[len(recs)-1]; rec.Capture == nil || rec.Capture.Method != trace.MethodDelve {
		b.Fatalf("capture %+v, want delve", rec.Capture)
	}
	return stalledAt.Sub(hangAt), recordedAt.Sub(hangAt)
}

func freePortB(b *testing.B) int {
	return testport.One(b)
}

// childrenCPU returns the CPU time of a process's reaped children
// (cutime+cstime, 10 ms ticks): the exec probes' shells.
func childrenCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	cu, _ := strconv.ParseInt(f[13], 10, 64)
	cs, _ := strconv.ParseInt(f[14], 10, 64)
	return time.Duration(cu+cs) * 10 * time.Millisecond
}

// BenchmarkProbeCPU: the supervisor's CPU while it probes a healthy Go
// HTTP server every 100ms (http, tcp, exec "true"), beside the same
// supervisor and server without a probe, over MTEV_BENCH_PROBE_WINDOW
// (default 10s) after a 2 s settle. The supervisor is the real
// mtev-supervise binary; children-cpu-ms is the CPU of the exec probes'
// shells. Run with -benchtime=1x.
func BenchmarkProbeCPU(b *testing.B) {
	window := 10 * time.Second
	if v := os.Getenv("MTEV_BENCH_PROBE_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("MTEV_BENCH_PROBE_WINDOW: %v", err)
		}
		window = d
	}
	child := buildHTTPHang(b)
	bin := filepath.Join(b.TempDir(), "mtev-supervise")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/mtev-supervise").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	measure := func(b *testing.B, probe func(port int) []string) {
		port := freePortB(b)
		args := []string{"run", "--name", "probecpu", "--quiet"}
		args = append(args, probe(port)...)
		args = append(args, "--", child, "-addr", fmt.Sprintf("127.0.0.1:%d", port))
		cmd := exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Env = append(os.Environ(), "MTEV_STATE_DIR="+b.TempDir())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}()
		time.Sleep(2 * time.Second) // settle: start-up work is not the probes' cost
		c0, k0 := schedCPU(cmd.Process.Pid), childrenCPU(cmd.Process.Pid)
		time.Sleep(window)
		c1, k1 := schedCPU(cmd.Process.Pid), childrenCPU(cmd.Process.Pid)
		if stderr.Len() > 0 {
			b.Fatalf("the supervisor said: %s", stderr.String())
		}
		b.ReportMetric(float64(c1-c0)/float64(window)*100, "cpu-%")
		b.ReportMetric(float64(c1-c0)/1e6, "cpu-ms")
		b.ReportMetric(float64(k1-k0)/1e6, "children-cpu-ms")
		b.ReportMetric(0, "ns/op")
	}
	every := []string{"--probe-interval", "100ms", "--probe-timeout", "100ms"}
	b.Run("http-100ms", func(b *testing.B) {
		measure(b, func(port int) []string {
			return append([]string{"--probe", fmt.Sprintf("http://127.0.0.1:%d/", port)}, every...)
		})
	})
	b.Run("tcp-100ms", func(b *testing.B) {
		measure(b, func(port int) []string {
			return append([]string{"--probe", fmt.Sprintf("tcp://127.0.0.1:%d", port)}, every...)
		})
	})
	b.Run("exec-100ms", func(b *testing.B) {
		measure(b, func(int) []string { return append([]string{"--probe", "exec:true"}, every...) })
	})
	b.Run("base-noprobe", func(b *testing.B) { measure(b, func(int) []string { return nil }) })
}
