package runtimetest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/runtime"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/hearts"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/report"
)

// Options of New.
type Options struct {
	// Slots of the heart table; 0 is 64.
	Slots int
	// HeartTimeout of hearts created without one; 0 is hearts'.
	HeartTimeout time.Duration
	// StartCount the app sees; 0 is 1.
	StartCount int
	// NoHearts, NoDump and NoReports leave a channel out, as
	// `mtev-supervise run --hearts off` leaves out the heart table and
	// the dump channel.
	NoHearts, NoDump, NoReports bool
}

// Supervisor is the supervisor's side of the channels.
type Supervisor struct {
	// Table is the supervisor's view of the heart table (nil with
	// NoHearts).
	Table *hearts.Table
	// Monitor watches Table (nil with NoHearts).
	Monitor *hearts.Monitor

	attach  runtime.Attach
	dump    *dump.Client
	reports *report.Receiver
	stalls  chan runtime.Stall
	served  chan struct{}
}

// New creates the channels; they are closed when the test ends.
func New(t testing.TB, opts Options) *Supervisor {
	t.Helper()
	if opts.Slots == 0 {
		opts.Slots = 64
	}
	if opts.StartCount == 0 {
		opts.StartCount = 1
	}
	s := &Supervisor{stalls: make(chan runtime.Stall, 64), served: make(chan struct{})}
	s.attach.StartCount = opts.StartCount
	if !opts.NoHearts {
		tbl, f, err := hearts.Create(opts.Slots)
		if err != nil {
			t.Fatalf("runtimetest: %v", err)
		}
		t.Cleanup(func() { tbl.Close(); f.Close() })
		child, err := hearts.Open(f)
		if err != nil {
			t.Fatalf("runtimetest: %v", err)
		}
		t.Cleanup(func() { child.Close() })
		s.Table, s.attach.Hearts = tbl, child
		s.Monitor = hearts.NewMonitor(tbl, hearts.MonitorConfig{DefaultTimeout: opts.HeartTimeout})
		s.Monitor.Reset(time.Now())
	}
	if !opts.NoDump {
		parent, child, err := dump.Pair()
		if err != nil {
			t.Fatalf("runtimetest: %v", err)
		}
		c, err := dump.NewClient(parent)
		parent.Close()
		if err != nil {
			t.Fatalf("runtimetest: %v", err)
		}
		t.Cleanup(func() { c.Close(); child.Close() })
		s.dump, s.attach.Dump = c, child
	}
	if opts.NoReports {
		close(s.served)
	} else {
		parent, child, err := report.Pair()
		if err != nil {
			t.Fatalf("runtimetest: %v", err)
		}
		r, err := report.NewReceiver(parent)
		parent.Close()
		if err != nil {
			t.Fatalf("runtimetest: %v", err)
		}
		s.reports, s.attach.Reports = r, child
		go func() {
			defer close(s.served)
			r.Serve(func(st runtime.Stall) {
				select {
				case s.stalls <- st:
				default: // a test that does not read loses the rest
				}
			}, nil)
		}()
		t.Cleanup(func() { r.Close(); <-s.served; child.Close() })
	}
	return s
}

// Attach is what the app is given; pass it to runtime.RunAttached.
func (s *Supervisor) Attach() runtime.Attach { return s.attach }

// Start runs app with the channels on a goroutine of its own. stop
// cancels its context and returns what runtime.RunAttached returned.
func (s *Supervisor) Start(t testing.TB, app runtime.App) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runtime.RunAttached(ctx, app, s.attach) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// WaitReady waits until the app declared readiness (its Start returned),
// failing the test after a minute.
func (s *Supervisor) WaitReady(t testing.TB) {
	t.Helper()
	if s.Table == nil {
		t.Fatal("runtimetest: WaitReady needs the heart table")
	}
	deadline := time.Now().Add(time.Minute)
	for !s.Table.IsReady() {
		if time.Now().After(deadline) {
			t.Fatal("runtimetest: the app never declared readiness")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Hearts lists the hearts the app created, as the supervisor sees them.
func (s *Supervisor) Hearts() []hearts.Status {
	if s.Monitor == nil {
		return nil
	}
	return s.Monitor.Hearts(time.Now())
}

// Check runs one monitor pass: the soft and hard stalls of the app's
// hearts now.
func (s *Supervisor) Check() []hearts.Event {
	if s.Monitor == nil {
		return nil
	}
	return s.Monitor.Check(time.Now())
}

// Stalls delivers the stalls the app reported (runtime.ReportStall),
// after the supervisor's rate limit.
func (s *Supervisor) Stalls() <-chan runtime.Stall { return s.stalls }

// Dump asks the app for its own dump into dir, as the supervisor does at a
// stall, with a budget of 5 s.
func (s *Supervisor) Dump(ctx context.Context, dir string) (dump.Result, error) {
	if s.dump == nil {
		return dump.Result{}, os.ErrInvalid
	}
	return s.dump.Request(ctx, dir, 5*time.Second)
}
