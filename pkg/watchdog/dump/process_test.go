package dump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envChild makes the test binary run as a child: "serve" or "silent".
const envChild = "DUMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(envChild); mode != "" {
		os.Exit(childMain(mode))
	}
	os.Exit(m.Run())
}

// parkedForDump is the function a labeled goroutine of the child sits in.
//
//go:noinline
func parkedForDump(ch chan struct{}) { <-ch }

// parked reports whether the labeled goroutine sits in parkedForDump.
func parked() bool {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, "dump.parkedForDump+") && strings.Contains(g, `# labels: {"mtev-test":"parked"}`) {
			return true
		}
	}
	return false
}

func childMain(mode string) int {
	switch mode {
	case "serve":
		rec, err := StartFlightRecorder(time.Second, 1<<20)
		if err != nil {
			fmt.Println(err)
			return 5
		}
		defer rec.Stop()
		// The labeled goroutine must be parked, labels and all, before
		// the first request can arrive: a dump taken while pprof.Do is
		// still building its context shows the goroutine without them.
		park := make(chan struct{})
		go pprof.Do(context.Background(), pprof.Labels("mtev-test", "parked"), func(context.Context) {
			parkedForDump(park)
		})
		for !parked() {
			time.Sleep(time.Millisecond)
		}
		if err := ServeFromEnv(context.Background(), Options{Recorder: rec}); err != nil {
			fmt.Println(err)
			return 5
		}
		return 0
	case "silent":
		// Holds the control socket and never reads it.
		io.Copy(io.Discard, os.Stdin)
		return 0
	}
	return 6
}

// startChild runs the test binary as a child in mode, with the child's end
// of a control socket, and returns a client for the parent's end.
func startChild(t testing.TB, mode string, env ...string) (*exec.Cmd, *Client) {
	t.Helper()
	parent, child, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	stdin, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envChild+"="+mode, EnvFD+"=3"), env...)
	cmd.ExtraFiles = []*os.File{child}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	stdin.Close()
	c, err := NewClient(parent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		stdinW.Close()
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, c
}

// waitExit waits for the child to exit on its own; the limit guards a hang.
func waitExit(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("child did not exit")
		return nil
	}
}

// checkDump checks the files of a dump of a "serve" child.
func checkDump(t *testing.T, res Result, dir string) {
	t.Helper()
	if len(res.Files) != len(Kinds) {
		t.Fatalf("files %+v, want %d", res.Files, len(Kinds))
	}
	want := map[string][]string{
		KindGoroutines: {"dump.parkedForDump(", `labels:{"mtev-test": "parked"}`, "goroutine "},
		KindGrouped:    {"dump.parkedForDump+", `# labels: {"mtev-test":"parked"}`},
	}
	for i, f := range res.Files {
		if f.Kind != Kinds[i] || f.Err != "" {
			t.Fatalf("file %d: %+v", i, f)
		}
		wantPath := fmt.Sprintf("%s/dump-%d-%s", dir, res.ID, fileNames[f.Kind])
		if f.Path != wantPath {
			t.Fatalf("file %s at %s, want %s", f.Kind, f.Path, wantPath)
		}
		b, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != f.Size || f.Size == 0 {
			t.Fatalf("%s: size %d, file holds %d bytes", f.Kind, f.Size, len(b))
		}
		for _, w := range want[f.Kind] {
			if !bytes.Contains(b, []byte(w)) {
				t.Errorf("%s lacks %q:\n%s", f.Kind, w, b)
			}
		}
		if f.Kind == KindTrace {
			if !bytes.HasPrefix(b, []byte("go 1.")) || !bytes.Contains(b[:16], []byte(" trace\x00")) {
				t.Errorf("trace header %q", b[:min(16, len(b))])
			}
		}
	}
}

func TestProcessDump(t *testing.T) {
	cmd, c := startChild(t, "serve", "GODEBUG=tracebacklabels=1")
	ctx := context.Background()
	if err := c.Ping(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := c.Request(ctx, dir, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != 2 {
		t.Fatalf("reply id %d, want 2", res.ID)
	}
	checkDump(t, res, dir)

	// A stopped child cannot answer: the request is abandoned at the
	// budget. Once resumed the child answers it late; the next request must
	// still get its own reply.
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(ctx, dir, 200*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("request to a stopped child: %v, want ErrTimeout", err)
	}
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	res, err = c.Request(ctx, dir, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != 4 {
		t.Fatalf("reply id %d after an abandoned request, want 4", res.ID)
	}
	checkDump(t, res, dir)

	// The parent closes: Serve returns nil and the child exits 0.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := waitExit(t, cmd); err != nil {
		t.Fatalf("child exit after the parent closed: %v", err)
	}
	if _, err := c.Request(ctx, dir, time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("request after Close: %v, want ErrClosed", err)
	}
}

func TestProcessDumpWithoutTracebackLabels(t *testing.T) {
	_, c := startChild(t, "serve", "GODEBUG=tracebacklabels=0")
	dir := t.TempDir()
	res, err := c.Request(context.Background(), dir, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The grouped profile carries the labels even so.
	b, err := os.ReadFile(res.Files[1].Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`# labels: {"mtev-test":"parked"}`)) {
		t.Fatalf("grouped profile lacks labels:\n%s", b)
	}
}

func TestProcessSilentChild(t *testing.T) {
	_, c := startChild(t, "silent")
	_, err := c.Request(context.Background(), t.TempDir(), 200*time.Millisecond)
	if !errors.Is(err, ErrTimeout) || !strings.HasPrefix(err.Error(), "dump: request 1: ") {
		t.Fatalf("request to a silent child: %v, want ErrTimeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer time.AfterFunc(50*time.Millisecond, cancel).Stop()
	if err := c.Ping(ctx, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ping: %v, want context.Canceled", err)
	}
}
