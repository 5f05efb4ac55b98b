package delve

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	watchdump "github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump"
)

// linkedChildEnv makes the test binary a linked child for the cooperative
// subject: it parks N goroutines at the same depth as the goroutines
// scenario and answers dump requests on fd 3.
const linkedChildEnv = "MTEV_DELVE_BENCH_LINKED"

func init() {
	v := os.Getenv(linkedChildEnv)
	if v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		os.Exit(2)
	}
	block := make(chan struct{})
	for range n {
		go coopPark1(block)
	}
	go watchdump.Serve(context.Background(), os.NewFile(3, "control"), watchdump.Options{})
	fmt.Println("ready")
	<-block
	os.Exit(0)
}

//go:noinline
func coopPark1(c chan struct{}) { coopPark2(c) }

//go:noinline
func coopPark2(c chan struct{}) { coopPark3(c) }

//go:noinline
func coopPark3(c chan struct{}) { coopPark4(c) }

//go:noinline
func coopPark4(c chan struct{}) { coopPark5(c) }

//go:noinline
func coopPark5(c chan struct{}) { <-c }

// benchCooperative is the subject a linked child gets: the supervisor asks
// the child for its goroutine profile over the dump channel and parses it
// into the record's goroutines (what happens at a soft deadline). ms is
// request to parsed goroutines; child-ms the time the child spent writing
// (its world is stopped for part of it).
func benchCooperative(b *testing.B, n int) {
	parent, child, err := watchdump.Pair()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), linkedChildEnv+"="+strconv.Itoa(n))
	cmd.ExtraFiles = []*os.File{child}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	child.Close()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		b.Fatalf("linked child: %q, %v", line, err)
	}
	client, err := watchdump.NewClient(parent)
	parent.Close()
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	dir := b.TempDir()
	var childTime time.Duration
	var got int
	b.ResetTimer()
	for range b.N {
		res, err := client.Request(context.Background(), dir, 5*time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		childTime += res.Elapsed
		var parked int
		for _, f := range res.Files {
			if f.Kind != watchdump.KindGoroutines {
				continue
			}
			text, err := os.ReadFile(f.Path)
			if err != nil {
				b.Fatal(err)
			}
			gs, _, err := trace.ParseCrash(text)
			if err != nil {
				b.Fatal(err)
			}
			for i := range gs {
				if hasFrame(&gs[i], "github.com/mtev-supervise/mtev-supervise/pkg/trace/delve.coopPark5") {
					parked++
				}
			}
		}
		// The runtime caps a debug=2 goroutine profile at 64 MiB (about
		// 80,000 goroutines of this depth): past that it is truncated.
		if parked != n && (n < 50000 || parked < 50000) {
			b.Fatalf("parsed %d parked goroutines, want %d", parked, n)
		}
		got = parked
	}
	b.StopTimer()
	b.ReportMetric(ms(b.Elapsed())/float64(b.N), "ms")
	b.ReportMetric(ms(childTime)/float64(b.N), "child-ms")
	b.ReportMetric(float64(got), "goroutines-read")
}
