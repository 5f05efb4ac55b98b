package log

import (
	"bytes"
	"runtime/trace"
	"strings"
	"testing"
)

// TestLogProbeInTrace: while an execution trace is taken, a line written
// to a facility appears as a "log" region naming the facility.
func TestLogProbeInTrace(t *testing.T) {
	var out bytes.Buffer
	g := New(WithStderr(&out))
	defer g.Close()
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Skipf("a trace is already running: %v", err)
	}
	g.Facility("probe-facility").Printf("hello")
	if err := g.Connect("probe-facility", "notice"); err != nil {
		trace.Stop()
		t.Fatal(err)
	}
	g.Facility("probe-facility").Printf("hello")
	trace.Stop()
	if !strings.Contains(out.String(), "hello") {
		t.Fatalf("line not written: %q", out.String())
	}
	if !strings.Contains(buf.String(), "probe-facility") {
		t.Errorf("trace (%d bytes) lacks the facility name", buf.Len())
	}
}
