package runtimetest_test

import (
	"context"
	"errors"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime/runtimetest"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/hearts"
)

var mu sync.Mutex

//go:noinline
func stuckHandler() {
	mu.Lock()
	mu.Lock()
}

// An app run in the test's process against the fake supervisor: its loops
// get hearts, it answers a dump that shows its stuck handler, and the
// stall it reports arrives.
func TestApp(t *testing.T) {
	sup := runtimetest.New(t, runtimetest.Options{StartCount: 3})
	var started int
	stop := sup.Start(t, runtime.App{
		Name:    "app",
		Eventer: eventer.Options{Concurrency: 2, Timeout: time.Second},
		Run: func(ctx context.Context, rt *runtime.Runtime) error {
			started = rt.StartCount
			if !rt.Supervised {
				return errors.New("not supervised")
			}
			go pprof.Do(context.Background(), pprof.Labels("mtev.route", "GET /x"), func(context.Context) { stuckHandler() })
			if err := rt.ReportStall(runtime.Stall{Source: "http", Name: "GET /x", Elapsed: 2 * time.Second,
				Deadline: time.Second, Labels: map[string]string{"mtev.route": "GET /x"}}); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		},
	})
	sup.WaitReady(t)
	select {
	case st := <-sup.Stalls():
		if st.Source != "http" || st.Name != "GET /x" || st.Labels["mtev.route"] != "GET /x" || st.Hard {
			t.Fatalf("stall %+v", st)
		}
	case <-time.After(time.Minute):
		t.Fatal("no stall reported")
	}
	var names []string
	for _, h := range sup.Hearts() {
		names = append(names, h.Name)
	}
	slices.Sort(names) // loops create their hearts in any order
	if strings.Join(names, ",") != "e:default/0,e:default/1" {
		t.Fatalf("hearts %v", names)
	}
	for _, e := range sup.Check() {
		if e.Kind == hearts.HardStall {
			t.Fatalf("a hard stall of a healthy app: %v", e)
		}
	}
	res, err := sup.Dump(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var text []byte
	for _, f := range res.Files {
		if f.Kind == dump.KindGoroutines {
			text, _ = os.ReadFile(f.Path)
		}
	}
	if !strings.Contains(string(text), "stuckHandler") {
		t.Fatalf("the dump does not show the stuck handler:\n%.2000s", text)
	}
	if err := stop(); err != nil {
		t.Fatalf("the app ended with %v", err)
	}
	if started != 3 {
		t.Fatalf("start count %d, want 3", started)
	}
}

// Without a supervisor's channels, ReportStall says so.
func TestNoReports(t *testing.T) {
	sup := runtimetest.New(t, runtimetest.Options{NoReports: true, NoDump: true})
	var got error
	stop := sup.Start(t, runtime.App{
		Eventer: eventer.Options{Concurrency: 1, Timeout: time.Second},
		Run: func(ctx context.Context, rt *runtime.Runtime) error {
			got = rt.ReportStall(runtime.Stall{Source: "probe"})
			return nil
		},
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(got, runtime.ErrNotSupervised) {
		t.Fatalf("ReportStall: %v, want ErrNotSupervised", got)
	}
}
