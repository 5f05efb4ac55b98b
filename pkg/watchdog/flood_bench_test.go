package watchdog

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkNotifyFlood: the supervisor's CPU share while a stranger (this
// process, outside the child's tree) sends 23,500 notify datagrams a
// second to its socket, beside the same supervisor left idle; and how many
// warning lines the flood printed. The window is MTEV_BENCH_FLOOD (default
// 10s) after a 2 s settle; the supervisor is the real binary.
func BenchmarkNotifyFlood(b *testing.B) {
	const rate = 23500
	child := respawnChild(b)
	window := 10 * time.Second
	if v := os.Getenv("MTEV_BENCH_FLOOD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("MTEV_BENCH_FLOOD: %v", err)
		}
		window = d
	}
	bin := filepath.Join(b.TempDir(), "mtev-supervise")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/mtev-supervise").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	measure := func(b *testing.B, flood bool) {
		state := b.TempDir()
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "run", "--name", "flood", "--notify", "--", child, filepath.Join(b.TempDir(), "events.log"), "pause")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Env = append(os.Environ(), "MTEV_STATE_DIR="+state)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		stop := func() {
			syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
			cmd.Wait()
		}
		defer func() {
			if cmd.ProcessState == nil {
				stop()
			}
		}()
		time.Sleep(2 * time.Second) // settle: start-up work is not the cost measured
		var conn *net.UnixConn
		if flood {
			var err error
			conn, err = net.DialUnix("unixgram", nil, &net.UnixAddr{Name: filepath.Join(state, "run", "flood.notify"), Net: "unixgram"})
			if err != nil {
				b.Fatal(err)
			}
		}
		c0 := schedCPU(cmd.Process.Pid)
		t0 := time.Now()
		sent := 0
		msg := []byte("WATCHDOG=1")
		for tick := time.NewTicker(10 * time.Millisecond); time.Since(t0) < window; <-tick.C {
			if conn == nil {
				continue
			}
			due := int(time.Since(t0).Seconds()*rate) - sent
			for range due {
				conn.Write(msg)
			}
			sent += due
		}
		elapsed := time.Since(t0)
		c1 := schedCPU(cmd.Process.Pid)
		if conn != nil {
			conn.Close()
		}
		stop()
		b.ReportMetric(float64(c1-c0)/float64(elapsed)*100, "cpu-%")
		b.ReportMetric(float64(sent)/elapsed.Seconds(), "datagrams/s")
		b.ReportMetric(float64(bytes.Count(stderr.Bytes(), []byte("refused"))), "warning-lines")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("supervisor-flooded", func(b *testing.B) { measure(b, true) })
	b.Run("base-idle", func(b *testing.B) { measure(b, false) })
}
