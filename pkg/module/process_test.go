package module

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/internal/syncbuf"
	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

// pluginScript writes an executable that runs this test binary as the
// test module process (exec keeps the PID).
func pluginScript(t testing.TB, dir string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "test-module")
	body := fmt.Sprintf("#!/bin/sh\n%s=1 exec %q \"$@\"\n", pluginEnv, exe)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reports collects Host.Report calls.
type reports struct {
	mu      sync.Mutex
	list    []Stall
	aliveAt []bool // whether Stall.PID was alive when reported
}

func (r *reports) add(s Stall) {
	a := s.PID != 0 && alive(s.PID)
	r.mu.Lock()
	r.list = append(r.list, s)
	r.aliveAt = append(r.aliveAt, a)
	r.mu.Unlock()
}

func (r *reports) get() []Stall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Stall(nil), r.list...)
}

// alive says whether pid is a live process (not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z'
}

// host is a running test host: the module set, an HTTP server whose
// handler invokes testPoint (answered by the module process), and a
// client hammering it from the start of the test to its end.
type host struct {
	set      *Set
	reports  *reports
	srv      *httptest.Server
	stderr   *syncbuf.Buffer
	answered atomic.Int64
	failed   atomic.Int64
	stop     chan struct{}
	done     chan struct{}
}

func startHost(t *testing.T, attrs string) *host {
	t.Helper()
	dir := t.TempDir()
	pluginScript(t, dir)
	cfg := writeConfig(t, dir, fmt.Sprintf(`<generic image="./test-module" name="proc" heartbeat="50ms" heartbeat_timeout="500ms" hook_timeout="300ms" restart_backoff="20ms" restart_backoff_max="200ms" %s/>
`, attrs))
	h := &host{reports: &reports{}, stderr: &syncbuf.Buffer{}, stop: make(chan struct{}), done: make(chan struct{})}
	logs := log.New(log.WithStderr(h.stderr))
	t.Cleanup(func() { logs.Close() })
	set, err := Load(context.Background(), cfg, Host{Logs: logs, Report: h.reports.add})
	if err != nil {
		t.Fatal(err)
	}
	h.set = set
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, testPoint.Invoke(testValue{Cmd: "echo"}))
	}))
	go func() {
		defer close(h.done)
		for {
			select {
			case <-h.stop:
				return
			default:
			}
			resp, err := http.Get(h.srv.URL)
			if err != nil {
				h.failed.Add(1)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				h.failed.Add(1)
				continue
			}
			h.answered.Add(1)
		}
	}()
	t.Cleanup(func() {
		close(h.stop)
		<-h.done
		h.srv.Close()
		if n := h.failed.Load(); n != 0 {
			t.Errorf("the host failed %d requests while its module process came and went", n)
		}
		set.Close()
	})
	return h
}

// proc returns the module's current process id and whether it is up.
func (h *host) proc() (int, bool, int) {
	i := h.set.List()[0]
	return i.PID, i.Up, i.Runs
}

// waitAnswered waits until the host has answered n more requests.
func (h *host) waitAnswered(t *testing.T, n int64) {
	t.Helper()
	target := h.answered.Load() + n
	waitFor(t, "the host to answer requests", func() bool { return h.answered.Load() >= target })
}

func TestProcessModuleAnswersHooks(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/nowhere")
	t.Setenv("MTEV_HEARTS_FD", "3")
	t.Setenv("MTEV_MODULE_TEST_KEPT", "kept")
	h := startHost(t, "")
	if r := testPoint.Invoke(testValue{Cmd: "env"}); r != hook.Done {
		t.Fatalf("the module process's environment: %v", r)
	}
	pid, up, runs := h.proc()
	if !up || pid == 0 || runs != 1 || !alive(pid) {
		t.Fatalf("module process: pid %d up %v runs %d", pid, up, runs)
	}
	if r := testPoint.Invoke(testValue{Cmd: "echo"}); r != hook.Done {
		t.Fatalf("the module process answered %v, want DONE", r)
	}
	found := false
	for _, p := range hook.Points() {
		if p.Name == "test_module_point" {
			found = strings.Contains(strings.Join(p.Attached, ","), "module:proc")
		}
	}
	if !found {
		t.Fatal("hook listing does not show module:proc attached")
	}
	var b strings.Builder
	h.set.Show(&b)
	if want := fmt.Sprintf("proc: ./test-module (process, pid %d, started 1 times, hook calls failed 0, skipped 0)\n", pid); b.String() != want {
		t.Fatalf("show modules printed %q, want %q", b.String(), want)
	}
	h.waitAnswered(t, 10)
	h.set.Close()
	b.Reset()
	h.set.Show(&b)
	if b.String() != "no modules\n" {
		t.Fatalf("show modules after Close printed %q", b.String())
	}
	waitFor(t, "the module process to end after Close", func() bool { return !alive(pid) })
	if r := testPoint.Invoke(testValue{Cmd: "echo"}); r != hook.Continue {
		t.Fatalf("a stopped module answered %v, want CONTINUE", r)
	}
	if n := len(h.reports.get()); n != 0 {
		t.Fatalf("a clean stop was reported: %+v", h.reports.get())
	}
}

func TestProcessModuleCrash(t *testing.T) {
	h := startHost(t, "")
	pid, _, _ := h.proc()
	h.waitAnswered(t, 5)
	// The crash happens inside a hook call: the caller gets CONTINUE.
	if r := testPoint.Invoke(testValue{Cmd: "crash", N: 42}); r != hook.Continue {
		t.Fatalf("hook call into a crashing module answered %v", r)
	}
	waitFor(t, "the crash report", func() bool { return len(h.reports.get()) > 0 })
	s := h.reports.get()[0]
	if s.Source != "module" || s.Name != "proc" || s.Labels["module.event"] != "crash" || s.Labels["module.pid"] != fmt.Sprint(pid) || s.Labels["mtev.module"] != "proc" {
		t.Fatalf("crash reported as %+v", s)
	}
	if !strings.Contains(s.Detail, "exit status 2") || !strings.Contains(s.Detail, "panic: test module crash 42") || !strings.Contains(s.Detail, "goroutine ") {
		t.Fatalf("crash detail lacks the exit status or the fatal output:\n%s", s.Detail)
	}
	waitFor(t, "a new module process", func() bool {
		p, up, _ := h.proc()
		return up && p != pid
	})
	newPID, _, runs := h.proc()
	if runs != 2 || !alive(newPID) {
		t.Fatalf("after the crash: pid %d runs %d", newPID, runs)
	}
	if r := testPoint.Invoke(testValue{Cmd: "echo"}); r != hook.Done {
		t.Fatalf("the restarted module answered %v, want DONE (%+v)", r, h.set.List()[0])
	}
	h.waitAnswered(t, 5)
	if n := len(h.reports.get()); n != 1 {
		t.Fatalf("one crash made %d reports: %+v", n, h.reports.get())
	}
}

func TestProcessModuleHang(t *testing.T) {
	h := startHost(t, "")
	pid, _, _ := h.proc()
	h.waitAnswered(t, 5)
	// The hook call gives up after hook_timeout; the module's heart then
	// stops answering and the host reports a hang while the process is
	// still there to capture.
	if r := testPoint.Invoke(testValue{Cmd: "hang"}); r != hook.Continue {
		t.Fatalf("hook call into a hanging module answered %v", r)
	}
	// Until the module answers a heartbeat again, hook calls do not wait
	// for it.
	if r := testPoint.Invoke(testValue{Cmd: "echo"}); r != hook.Continue {
		t.Fatalf("hook call into a module known to be slow answered %v", r)
	}
	if i := h.set.List()[0]; i.HookSkipped == 0 || i.HookErrors == 0 {
		t.Fatalf("a timed-out hook call and a skipped one counted as %+v", i)
	}
	waitFor(t, "the hang report", func() bool { return len(h.reports.get()) > 0 })
	s := h.reports.get()[0]
	if !h.reports.aliveAt[0] {
		t.Fatal("the hung process was gone when it was reported: nothing to capture")
	}
	if s.Source != "module" || s.Name != "proc" || s.PID != pid || s.Labels["module.event"] != "hang" || s.Deadline != 500*time.Millisecond || s.Elapsed < s.Deadline {
		t.Fatalf("hang reported as %+v", s)
	}
	// The module's own account: the call that hangs and its goroutines,
	// the hung one labelled with the call.
	if !strings.Contains(s.Detail, "heartbeat unanswered") || !strings.Contains(s.Detail, "; hook test_module_point running for ") ||
		!strings.Contains(s.Detail, "goroutine ") || !strings.Contains(s.Detail, "testPlugin).Hooks") || s.Labels["mtev.module.call"] != "hook test_module_point" {
		t.Fatalf("hang reported without the module's account: labels %v\n%s", s.Labels, s.Detail)
	}
	waitFor(t, "a new module process", func() bool {
		p, up, _ := h.proc()
		return up && p != pid
	})
	waitFor(t, "the hung process to be gone", func() bool { return !alive(pid) })
	// SIGQUIT made the hung Go process print its goroutines, into the
	// module's log.
	waitFor(t, "the hung module's goroutine dump in the log", func() bool {
		return strings.Contains(h.stderr.String(), "SIGQUIT") && strings.Contains(h.stderr.String(), "[notice/module/proc]")
	})
	if r := testPoint.Invoke(testValue{Cmd: "echo"}); r != hook.Done {
		t.Fatalf("the restarted module answered %v, want DONE (%+v)", r, h.set.List()[0])
	}
	h.waitAnswered(t, 5)
	if n := len(h.reports.get()); n != 1 {
		t.Fatalf("one hang made %d reports: %+v", n, h.reports.get())
	}
}

// A module process killed from outside at any moment is a crash of its
// own: reported with the signal, restarted.
func TestProcessModuleKilled(t *testing.T) {
	h := startHost(t, "")
	for round := range 3 {
		pid, _, _ := h.proc()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the kill to be reported", func() bool { return len(h.reports.get()) == round+1 })
		if s := h.reports.get()[round]; !strings.Contains(s.Detail, "signal: killed") {
			t.Fatalf("kill reported as %q", s.Detail)
		}
		waitFor(t, "a new module process", func() bool {
			p, up, _ := h.proc()
			return up && p != pid
		})
		h.waitAnswered(t, 3)
	}
}

func TestProcessModuleStageFailures(t *testing.T) {
	for _, stage := range []Stage{StageConfig, StageInit, StagePostInit} {
		t.Run(string(stage), func(t *testing.T) {
			dir := t.TempDir()
			pluginScript(t, dir)
			cfg := writeConfig(t, dir, fmt.Sprintf(`<generic image="./test-module" name="proc"><config><fail>%s</fail></config></generic>
`, stage))
			set, err := Load(context.Background(), cfg, Host{})
			if set != nil || err == nil || !strings.Contains(err.Error(), "module proc (./test-module): "+string(stage)+": ") {
				t.Fatalf("load error %v", err)
			}
		})
	}
	t.Run("undeclared hook point", func(t *testing.T) {
		dir := t.TempDir()
		pluginScript(t, dir)
		cfg := writeConfig(t, dir, `<generic image="./test-module" name="proc"><config><fail>hooks</fail></config></generic>
`)
		_, err := Load(context.Background(), cfg, Host{})
		if err == nil || !strings.Contains(err.Error(), "app.xml:3: module proc (./test-module): init: hook: attach module:proc to no_such_point: no such hook point") {
			t.Fatalf("load error %v", err)
		}
	})
	t.Run("other protocol version", func(t *testing.T) {
		dir := t.TempDir()
		pluginScript(t, dir)
		script := filepath.Join(dir, "test-module")
		b, _ := os.ReadFile(script)
		os.WriteFile(script, bytes.Replace(b, []byte(pluginEnv+"=1"), []byte(pluginEnv+"=v99"), 1), 0o755)
		cfg := writeConfig(t, dir, `<generic image="./test-module" name="proc"/>
`)
		_, err := Load(context.Background(), cfg, Host{})
		if err == nil || !strings.Contains(err.Error(), "module proc (./test-module): onload: ") || !strings.Contains(err.Error(), "99") || !strings.Contains(err.Error(), "[1]") {
			t.Fatalf("load error %v", err)
		}
	})
	t.Run("not a module", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "not-a-module")
		os.WriteFile(p, []byte("#!/bin/sh\necho 'this is not a module' >&2\nexit 3\n"), 0o755)
		cfg := writeConfig(t, dir, `<generic image="./not-a-module"/>
`)
		_, err := Load(context.Background(), cfg, Host{})
		if err == nil || !strings.Contains(err.Error(), "app.xml:3: module ./not-a-module (./not-a-module): onload: ") || !strings.Contains(err.Error(), "this is not a module") {
			t.Fatalf("load error %v", err)
		}
	})
}
