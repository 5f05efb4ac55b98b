package eventer

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/stats"
)

func TestStatsRegistered(t *testing.T) {
	checkNoLeak(t)
	reg := stats.NewRegistry()
	s, err := New(Options{
		Concurrency: 2,
		Queues:      []QueueOptions{{Name: "dns", Concurrency: 1}},
		Stats:       reg.NS("mtev/eventer"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	fired := make(chan struct{})
	if _, err := s.Default().Loop(1).AfterFunc("net/tick", 0, func() { close(fired) }); err != nil {
		t.Fatal(err)
	}
	<-fired
	done := make(chan error, 1)
	if err := s.Queue("dns").Add(context.Background(), Job{Name: "lookup", Loop: s.Default().Loop(0),
		Work: func(context.Context) error { return nil }, Done: func(err error) { done <- err }}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "callback latency recorded", func() bool {
		b, _ := json.Marshal(reg.JSON(stats.Tagged, false))
		return strings.Contains(string(b), `"latency|ST[callback:net/tick,eventer:callbacks,framework:mtev-supervise,mtev:eventer,pool:default]":{"_type":"H","_value":["H[`)
	})
	b, _ := json.Marshal(reg.JSON(stats.Nested, false))
	got := string(b)
	for _, want := range []string{
		`"pool":{"default":{"callbacks":{"_type":"L","_value":`,
		`"cycletime":{"_type":"H"`,
		`"threads":{"default.0":{"cycletime"`,
		`"jobq":{"default_queue":`,
		`"dns":{"added":{"_type":"L","_value":1}`,
		`"wait":{"_type":"H","_value":["H[`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("stats lack %s:\n%s", want, got)
		}
	}
	// Resetting through the registry empties the eventer's own histograms.
	reg.Reset(stats.KindHistogram)
	if n := s.Queue("dns").Snapshot().Wait.Count; n != 0 {
		t.Errorf("queue wait count after reset = %d", n)
	}
}
