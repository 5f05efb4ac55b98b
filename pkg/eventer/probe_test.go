package eventer

import (
	"bytes"
	"context"
	"runtime/trace"
	"strings"
	"testing"
)

// TestProbesInTrace: while an execution trace is taken, callbacks and jobs
// appear in it under their probe names.
func TestProbesInTrace(t *testing.T) {
	checkNoLeak(t)
	s, err := New(Options{Concurrency: 1, Queues: []QueueOptions{{Name: "probeq", Concurrency: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Skipf("a trace is already running: %v", err)
	}
	fired := make(chan struct{})
	if _, err := s.Default().Loop(0).AfterFunc("probe-timer", 0, func() { close(fired) }); err != nil {
		trace.Stop()
		t.Fatal(err)
	}
	<-fired
	done := make(chan error, 1)
	err = s.Queue("probeq").Add(context.Background(), Job{Name: "probe-job", Loop: s.Default().Loop(0),
		Work: func(context.Context) error { return nil }, Done: func(err error) { done <- err }})
	if err == nil {
		err = <-done
	}
	trace.Stop()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"eventer-callback:probe-timer", "jobq-work:probeq", "probe-job"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("trace (%d bytes) lacks %q", buf.Len(), want)
		}
	}
}
