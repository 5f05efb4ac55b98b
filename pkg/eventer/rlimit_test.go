package eventer

import (
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestNoFileLimitRaised(t *testing.T) {
	var before unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &before) })
	// Lower the soft limit so that there is something to raise.
	low := before
	low.Cur = 512
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	want := min(2048, int(before.Max))
	s, err := New(Options{Concurrency: 1, NoFileLimit: want})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	got, err := s.NoFileLimit()
	if err != nil || got != want {
		t.Fatalf("NoFileLimit() = %d, %v; want %d", got, err, want)
	}
	var now unix.Rlimit
	_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &now)
	if int(now.Cur) != want {
		t.Fatalf("soft limit %d, want %d", now.Cur, want)
	}
	// Never lowered.
	if n, err := raiseNoFile(300); err != nil || n != want {
		t.Fatalf("raiseNoFile(300) = %d, %v; want %d unchanged", n, err, want)
	}
}

func TestDebuggingReportsEveryCallback(t *testing.T) {
	checkNoLeak(t)
	var mu sync.Mutex
	var seen []SlowCallback
	s, err := New(Options{Concurrency: 1, Debugging: true, OnSlow: func(c SlowCallback) {
		mu.Lock()
		seen = append(seen, c)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if _, err := s.Default().Loop(0).AfterFunc("quick", time.Nanosecond, func() {}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the quick callback reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range seen {
			if c.Name == "quick" {
				return true
			}
		}
		return false
	})
}
