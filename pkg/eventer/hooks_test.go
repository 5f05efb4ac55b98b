package eventer

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
)

// StartedHook runs once per System, after every pool runs, and its
// functions may use the System (a post reaches a running loop).
func TestStartedHook(t *testing.T) {
	s, err := New(Options{Concurrency: 2, Pools: []PoolOptions{{Name: "hooked", Concurrency: 1, Timeout: time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	var calls atomic.Int32
	ran := make(chan struct{}, 1)
	StartedHook.Register("test", func(sys *System) hook.Result {
		if sys != s {
			return hook.Continue
		}
		calls.Add(1)
		if err := sys.Pool("hooked").Loop(0).Post(func() { ran <- struct{}{} }); err != nil {
			t.Errorf("post from eventer_started: %v", err)
		}
		return hook.Continue
	})
	var view []byte
	if err := hook.AttachJSON("eventer_started", "by-name", func(b []byte) hook.Result {
		if view == nil {
			view = b
		}
		return hook.Continue
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("closure posted from eventer_started never ran")
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("eventer_started ran %d times for one system started twice", n)
	}
	var v struct{ Pools []struct{ Name string } }
	if err := json.Unmarshal(view, &v); err != nil || len(v.Pools) != 2 || v.Pools[1].Name != "hooked" {
		t.Fatalf("by-name view %s (%v)", view, err)
	}
}
