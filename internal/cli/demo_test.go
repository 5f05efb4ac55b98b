package cli

import (
	"strings"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

func TestInvokedAs(t *testing.T) {
	for _, c := range []struct{ args0, want string }{
		{"mtev-supervise", "mtev-supervise"},
		{"./mtev-supervise", "./mtev-supervise"},
		{"/usr/local/bin/mtev-supervise", "/usr/local/bin/mtev-supervise"},
		{"/tmp/go-build123/b001/exe/mtev-supervise", "go run github.com/mtev-supervise/mtev-supervise/cmd/mtev-supervise@latest"},
	} {
		if got := invokedAs(&Env{Args0: c.args0}); got != c.want {
			t.Errorf("invokedAs(%q) = %q, want %q", c.args0, got, c.want)
		}
	}
}

// The demo shows one line about a child's fatal output, not the output.
func TestDemoFatalFilter(t *testing.T) {
	var errOut strings.Builder
	f := &fatalFilter{env: &Env{Stderr: &errOut}, self: "mtev-supervise"}
	lines := []watchdog.Line{
		{Stream: watchdog.Stderr, PID: 7, Text: []byte("working")},
		{Stream: watchdog.Stderr, PID: 7, Text: []byte("panic: boom")},
		{Stream: watchdog.Stderr, PID: 7, Text: []byte("goroutine 1 [running]:")},
		{Stream: watchdog.Stderr, PID: 7, Text: []byte("main.main()")},
		{Stream: watchdog.Stdout, PID: 8, Text: []byte("next child")},
		{Stream: watchdog.Stderr, PID: 8, Text: []byte("next child's stderr")},
	}
	var kept []string
	for _, l := range lines {
		if f.keep(l) {
			kept = append(kept, string(l.Text))
		}
	}
	if strings.Join(kept, "|") != "working|next child|next child's stderr" {
		t.Errorf("kept %q", kept)
	}
	if got := errOut.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "panic: boom") || !strings.Contains(got, "mtev-supervise traces show latest") {
		t.Errorf("note: %q", got)
	}
}
