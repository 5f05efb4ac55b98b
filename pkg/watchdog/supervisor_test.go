package watchdog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/internal/reap"
	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/incident"
)

// events collects supervisor events for assertions.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) count(match func(Event) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if match(ev) {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for d := time.Millisecond; !cond(); d = min(2*d, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(d)
	}
}

func newTestSupervisor(t *testing.T, cfg Config) (*Supervisor, *events) {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	ev := &events{}
	s, err := New(cfg, Options{Events: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	return s, ev
}

func readRecords(t testing.TB, stateDir string) []*trace.Record {
	t.Helper()
	recs, err := incident.ReadAll(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestCrashLoopGivesUp(t *testing.T) {
	s, ev := newTestSupervisor(t, Config{Command: []string{"sh", "-c", "exit 7"}, ZeroBackoff: true, Retries: 3, Span: time.Minute})
	err := s.Serve(context.Background())
	if !errors.Is(err, ErrCrashLoop) {
		t.Fatalf("Serve: %v, want ErrCrashLoop", err)
	}
	if n := ev.count(func(e Event) bool { _, ok := e.(Started); return ok }); n != 3 {
		t.Fatalf("started %d times, want 3", n)
	}
	recs := readRecords(t, s.cfg.StateDir)
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	for i, r := range recs {
		if r.Reason != trace.ReasonExit || r.Exit == nil || r.Exit.Code == nil || *r.Exit.Code != 7 {
			t.Fatalf("record %d: %+v", i, r)
		}
		if r.StartCount != i+1 {
			t.Fatalf("record %d: start count %d", i, r.StartCount)
		}
	}
	if recs[2].Action != trace.ActionGiveUp || recs[0].Action != trace.ActionRestart {
		t.Fatalf("actions %s, %s, %s", recs[0].Action, recs[1].Action, recs[2].Action)
	}
}

func TestOnFailureEndsOnCleanExit(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "flaky.sh")
	os.WriteFile(script, []byte("n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge 3 ] && exit 0; kill -SEGV $$\n"), 0o644)
	s, _ := newTestSupervisor(t, Config{Command: []string{"sh", script}, Dir: dir, ZeroBackoff: true})
	if err := s.Serve(context.Background()); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	recs := readRecords(t, s.cfg.StateDir)
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3: two crashes and the clean exit", len(recs))
	}
	for _, r := range recs[:2] {
		if r.Reason != trace.ReasonCrash || r.Exit.Signal != "SIGSEGV" || r.Action != trace.ActionRestart {
			t.Fatalf("record: reason %s exit %s action %s", r.Reason, r.Exit, r.Action)
		}
	}
	if last := recs[2]; last.Reason != trace.ReasonExit || *last.Exit.Code != 0 || last.Action != trace.ActionStop {
		t.Fatalf("last record: reason %s exit %s action %s", last.Reason, last.Exit, last.Action)
	}
}

func TestNeverPassesStatusThrough(t *testing.T) {
	s, _ := newTestSupervisor(t, Config{Command: []string{"sh", "-c", "exit 9"}, Restart: RestartNever})
	err := s.Serve(context.Background())
	var ce *ChildExitError
	if !errors.As(err, &ce) || ce.Status() != 9 {
		t.Fatalf("Serve: %v, want child status 9", err)
	}
}

func TestFirstStartFailureIsFinal(t *testing.T) {
	s, ev := newTestSupervisor(t, Config{Command: []string{"/nonexistent/program"}})
	err := s.Serve(context.Background())
	if !errors.Is(err, ErrStart) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Serve: %v, want ErrStart wrapping ErrNotExist", err)
	}
	if n := ev.count(func(e Event) bool { _, ok := e.(Started); return ok }); n != 0 {
		t.Fatalf("%d starts", n)
	}
}

func TestControlStatusRestartStop(t *testing.T) {
	s, ev := newTestSupervisor(t, Config{Name: "svc", Command: []string{"sleep", "1000"}})
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	ctx := context.Background()
	var st *StatusInfo
	waitFor(t, "status running", func() bool {
		var err error
		st, err = Control(ctx, s.cfg.StateDir, "svc", "status")
		return err == nil && st.State == "running"
	})
	first := st.PID
	if _, err := Control(ctx, s.cfg.StateDir, "svc", "restart"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new child", func() bool {
		st, err := Control(ctx, s.cfg.StateDir, "svc", "status")
		return err == nil && st.PID != 0 && st.PID != first && st.State == "running"
	})
	if _, err := Control(ctx, s.cfg.StateDir, "svc", "stop"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after stop: %v", err)
	}
	if recs := readRecords(t, s.cfg.StateDir); len(recs) != 0 {
		t.Fatalf("planned restart and stop recorded %d incidents", len(recs))
	}
	if n := ev.count(func(e Event) bool { x, ok := e.(Exited); return ok && x.Planned }); n != 2 {
		t.Fatalf("%d planned exits, want 2", n)
	}
	if _, err := Control(ctx, s.cfg.StateDir, "svc", "status"); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("status after stop: %v", err)
	}
}

func TestSecondSupervisorOfSameServiceRefused(t *testing.T) {
	dir := t.TempDir()
	s1, _ := newTestSupervisor(t, Config{Name: "one", StateDir: dir, Command: []string{"sleep", "1000"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s1.Serve(ctx) }()
	waitFor(t, "first supervisor", func() bool {
		_, err := Control(context.Background(), dir, "one", "status")
		return err == nil
	})
	s2, _ := newTestSupervisor(t, Config{Name: "one", StateDir: dir, Command: []string{"sleep", "1000"}})
	if err := s2.Serve(context.Background()); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Serve: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// An orphan that left the child's process group (setsid) is re-parented to
// the supervisor, a child subreaper, and reaped when it exits: no zombie
// stays behind.
func TestOrphansAreReaped(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "orphan.pid")
	// The middle shell forks the orphan and exits at once, so the orphan is
	// re-parented to the nearest subreaper: the supervisor.
	script := `sh -c 'setsid sh -c "echo \$\$ > \"\$0.tmp\"; mv \"\$0.tmp\" \"\$0\"; sleep 0.3" "$0" >/dev/null 2>&1 &' "$1"
exec sleep 1000`
	s, _ := newTestSupervisor(t, Config{Command: []string{"sh", "-c", script, "sh", pidFile}})
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	var pid int
	waitFor(t, "orphan pid", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(string(b), &pid)
		return err == nil
	})
	if st, err := reap.ReadStat(pid); err == nil && st.PPid != os.Getpid() {
		t.Fatalf("orphan's parent is %d, want the supervisor %d", st.PPid, os.Getpid())
	}
	waitFor(t, "orphan reaped", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return os.IsNotExist(err)
	})
	s.Stop()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// A slow reader slows the child down instead of losing lines: every line
// arrives, whole and in order, and the record keeps the last LogTail lines.
func TestSlowReaderLosesNoLine(t *testing.T) {
	const lines = 5000
	var mu sync.Mutex
	var got []string
	out := func(l Line) {
		if l.Stream != Stdout {
			return
		}
		mu.Lock()
		got = append(got, string(l.Text))
		n := len(got)
		mu.Unlock()
		if n%500 == 0 {
			time.Sleep(20 * time.Millisecond) // a reader that falls behind
		}
	}
	dir := t.TempDir()
	script := `i=1; while [ $i -le 5000 ]; do echo "line $i"; i=$((i+1)); done; kill -KILL $$`
	s, err := New(Config{Command: []string{"sh", "-c", script}, StateDir: dir, Restart: RestartNever, LogTail: 50}, Options{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(context.Background()); err == nil {
		t.Fatal("Serve: want the child's failure")
	}
	if len(got) != lines {
		t.Fatalf("%d lines, want %d", len(got), lines)
	}
	for i, l := range got {
		if want := fmt.Sprintf("line %d", i+1); l != want {
			t.Fatalf("line %d is %q, want %q", i+1, l, want)
		}
	}
	recs := readRecords(t, dir)
	if len(recs) != 1 || len(recs[0].LogTail) != 50 || recs[0].LogTail[49] != "line 5000" || recs[0].LogTail[0] != "line 4951" {
		t.Fatalf("record log tail: %d records, tail %q", len(recs), recs[0].LogTail)
	}
	if recs[0].Reason != trace.ReasonCrash || recs[0].Exit.Signal != "SIGKILL" {
		t.Fatalf("record: %s %s", recs[0].Reason, recs[0].Exit)
	}
}

func TestLongLinesArriveInPieces(t *testing.T) {
	var mu sync.Mutex
	var pieces []Line
	out := func(l Line) {
		mu.Lock()
		pieces = append(pieces, Line{Stream: l.Stream, Partial: l.Partial, Text: []byte(string(l.Text))})
		mu.Unlock()
	}
	dir := t.TempDir()
	// 150,000 bytes of 'x' then a newline, then "end".
	script := `head -c 150000 /dev/zero | tr '\0' x; echo; echo end`
	s, _ := New(Config{Command: []string{"sh", "-c", script}, StateDir: dir}, Options{Output: out})
	if err := s.Serve(context.Background()); err != nil {
		t.Fatal(err)
	}
	var total int
	for i, p := range pieces[:len(pieces)-1] {
		total += len(p.Text)
		if last := i == len(pieces)-2; p.Partial == last {
			t.Fatalf("piece %d: partial=%v", i, p.Partial)
		}
	}
	if total != 150000 || string(pieces[len(pieces)-1].Text) != "end" {
		t.Fatalf("pieces carry %d bytes, last %q", total, pieces[len(pieces)-1].Text)
	}
}

// A notify message from a live process outside the child's tree is
// ignored: here the test process itself claims the child is ready, and the
// start-up deadline still fires.
func TestNotifyFromStrangerIgnored(t *testing.T) {
	s, ev := newTestSupervisor(t, Config{
		Name:           "strange",
		Command:        []string{"sleep", "1000"},
		Notify:         true,
		StartupTimeout: time.Second,
		Restart:        RestartNever,
	})
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	path := filepath.Join(s.cfg.StateDir, "run", "strange.notify")
	waitFor(t, "the child", func() bool { st, err := s.Status(); return err == nil && st.PID != 0 })
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("READY=1"))
	conn.Close()
	if err := <-done; err == nil {
		t.Fatal("Serve: want the child killed for its start-up stall")
	}
	if n := ev.count(func(e Event) bool { _, ok := e.(Ready); return ok }); n != 0 {
		t.Fatal("a stranger's READY=1 was honoured")
	}
	if n := ev.count(func(e Event) bool {
		w, ok := e.(Warning)
		return ok && strings.Contains(w.Err.Error(), "not in the child's process tree")
	}); n != 1 {
		t.Fatalf("%d warnings about the stranger, want 1", n)
	}
}
