package watchdog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/mtev-supervise/mtev-supervise/internal/testport"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

func TestParseProbe(t *testing.T) {
	good := []struct{ in, want string }{
		{"http://127.0.0.1:8080/healthz", "http://127.0.0.1:8080/healthz"},
		{"http://localhost:8080", "http://localhost:8080/"},
		{"HTTP://localhost:8080/a?b=c", "http://localhost:8080/a?b=c"},
		{"https://[::1]:8443/ready", "https://[::1]:8443/ready"},
		{"tcp://127.0.0.1:9000", "tcp://127.0.0.1:9000"},
		{"tcp://[::1]:9000/", "tcp://[::1]:9000"},
		{"exec:curl -fsS http://127.0.0.1:8080/", "exec:curl -fsS http://127.0.0.1:8080/"},
		{"exec:test -e /run/ok && exit 0", "exec:test -e /run/ok && exit 0"},
	}
	for _, g := range good {
		p, err := ParseProbe(g.in)
		if err != nil {
			t.Errorf("ParseProbe(%q): %v", g.in, err)
			continue
		}
		if p.String() != g.want {
			t.Errorf("ParseProbe(%q) = %q, want %q", g.in, p.String(), g.want)
		}
	}
	bad := []struct{ in, want string }{
		{"", "want http://HOST:PORT/PATH"},
		{"127.0.0.1:80", "want http://HOST:PORT/PATH"},
		{"ftp://host:21/", `unknown scheme "ftp"`},
		{"udp://host:53", `unknown scheme "udp"`},
		{"tcp://127.0.0.1", "no port (want tcp://HOST:PORT)"},
		{"http://127.0.0.1/x", "no port (want http://HOST:PORT/PATH)"},
		{"tcp://:80", "no host"},
		{"tcp://h:0", `port "0": want 1 to 65535`},
		{"tcp://h:65536", `port "65536": want 1 to 65535`},
		{"tcp://h:80/path", "a tcp probe has no path"},
		{"http://u:p@h:80/", "credentials"},
		{"http://h:80/#frag", "fragment"},
		{"http://h:8x/", "invalid port"},
		{"exec:", "empty command"},
		{"exec:   ", "empty command"},
		{"exec:a\x00b", "NUL"},
	}
	for _, b := range bad {
		_, err := ParseProbe(b.in)
		if err == nil || !errors.Is(err, ErrProbeSpec) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("ParseProbe(%q): %v, want an ErrProbeSpec saying %q", b.in, err, b.want)
		}
	}
}

// FuzzParseProbe: any input is parsed or refused, never a panic, and what
// is parsed prints as a target that parses to the same.
func FuzzParseProbe(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8080/healthz", "tcp://[::1]:9", "exec:true", "https://h:1/a?b#c", "tcp://h", "exec:", "http://%zz:1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProbe(s)
		if err != nil {
			return
		}
		q, err := ParseProbe(p.String())
		if err != nil {
			t.Fatalf("%q parsed as %q, which does not parse: %v", s, p.String(), err)
		}
		if q.String() != p.String() {
			t.Fatalf("%q: %q then %q", s, p.String(), q.String())
		}
	})
}

func mustProbe(t *testing.T, spec string, timeout time.Duration) *prober {
	t.Helper()
	p, err := ParseProbe(spec)
	if err != nil {
		t.Fatal(err)
	}
	pr := newProber(p, timeout)
	t.Cleanup(pr.close)
	return pr
}

// freePort returns a port of 127.0.0.1 nobody listens on.
func freePort(t *testing.T) int {
	return testport.One(t)
}

func TestProberHTTP(t *testing.T) {
	hang := make(chan struct{})
	var agentMu sync.Mutex
	var agent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agentMu.Lock()
		agent = r.UserAgent()
		agentMu.Unlock()
		switch r.URL.Path {
		case "/ok":
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/missing":
			http.Error(w, "no such page\nsecond line", http.StatusNotFound)
		case "/fail":
			http.Error(w, "database down", http.StatusServiceUnavailable)
		case "/hang":
			<-hang
		}
	}))
	defer srv.Close()
	defer close(hang) // before Close, which waits for the handler
	ctx := context.Background()
	for _, c := range []struct{ path, want string }{
		{"/ok", ""},
		{"/moved", ""}, // 3xx passes, not followed
		{"/missing", "status 404: no such page"},
		{"/fail", "status 503: database down"},
		{"/hang", "no answer within 200ms"},
	} {
		err := mustProbe(t, srv.URL+c.path, 200*time.Millisecond).run(ctx)
		if c.want == "" && err != nil || c.want != "" && (err == nil || err.Error() != c.want) {
			t.Errorf("GET %s: %v, want %q", c.path, err, c.want)
		}
	}
	agentMu.Lock()
	defer agentMu.Unlock()
	if agent != probeUserAgent {
		t.Errorf("User-Agent %q, want %q", agent, probeUserAgent)
	}
	port := freePort(t)
	err := mustProbe(t, fmt.Sprintf("http://127.0.0.1:%d/", port), time.Second).run(ctx)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("closed port: %v, want connection refused", err)
	}
	// A stranger's TLS certificate is not checked, as Kubernetes does not.
	tls := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer tls.Close()
	if err := mustProbe(t, tls.URL+"/", time.Second).run(ctx); err != nil {
		t.Errorf("https with a self-signed certificate: %v", err)
	}
}

func TestProberTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx := context.Background()
	if err := mustProbe(t, "tcp://"+ln.Addr().String(), time.Second).run(ctx); err != nil {
		t.Errorf("listening port: %v", err)
	}
	port := freePort(t)
	err = mustProbe(t, fmt.Sprintf("tcp://127.0.0.1:%d", port), time.Second).run(ctx)
	want := fmt.Sprintf("connect 127.0.0.1:%d: connection refused", port)
	if err == nil || err.Error() != want {
		t.Errorf("closed port: %v, want %q", err, want)
	}
}

func TestProberExec(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	run := func(cmd string, timeout time.Duration) error {
		pr := mustProbe(t, "exec:"+cmd, timeout)
		pr.dir = dir
		pr.env = []string{"PATH=" + os.Getenv("PATH"), "PROBE_VAR=seen"}
		return pr.run(ctx)
	}
	if err := run(`test "$PROBE_VAR" = seen && test "$PWD" = "`+dir+`"`, 5*time.Second); err != nil {
		t.Errorf("environment and directory: %v", err)
	}
	if err := run("echo; echo the disk is full; exit 3", 5*time.Second); err == nil || err.Error() != "exit status 3: the disk is full" {
		t.Errorf("failing command: %v", err)
	}
	// A flood of output is cut, and does not block the command.
	if err := run("head -c 1000000 /dev/zero | tr '\\0' x; exit 1", 5*time.Second); err == nil || len(err.Error()) > 300 {
		t.Errorf("chatty command: %v", err)
	}
	// At the timeout the whole group goes, the command's children too.
	pidFile := filepath.Join(dir, "sleeper.pid")
	err := run("sleep 60 & echo $! > sleeper.pid; wait", 300*time.Millisecond)
	if err == nil || err.Error() != "no answer within 300ms" {
		t.Errorf("hung command: %v, want no answer within 300ms", err)
	}
	b, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitFor(t, "the probe's child to be killed", func() bool { return syscall.Kill(pid, 0) != nil || zombie(pid) })
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'Z'
}

func TestProbeConfigValidate(t *testing.T) {
	base := Config{Command: []string{"true"}, StateDir: t.TempDir()}
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Probe.Target = "ftp://h:1/" }, `probe: watchdog: bad probe "ftp://h:1/": unknown scheme`},
		{func(c *Config) { c.StartupProbe.Target = "tcp://h" }, "startup-probe: watchdog: bad probe"},
		{func(c *Config) { c.Probe.Failures = -1 }, "probe-failures -1: want at least 1"},
		{func(c *Config) { c.StartupProbe.Timeout = -time.Second }, "startup-probe-timeout -1s: want a positive duration"},
		{func(c *Config) { c.Probe.Interval = time.Microsecond }, "probe-interval 1µs: want at least 1ms"},
		{func(c *Config) { c.ProbeDelay = -1 }, "probe-initial-delay"},
	} {
		cfg := base
		c.mod(&cfg)
		_, err := New(cfg, Options{})
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want ErrConfig saying %q", err, c.want)
		}
	}
	cfg := base
	cfg.Probe = ProbeConfig{Target: "tcp://h:1", Interval: time.Second, Timeout: 5 * time.Second}
	if _, err := New(cfg, Options{}); err != nil {
		t.Errorf("a timeout above the interval is allowed: %v", err)
	}
	s, _ := New(base, Options{})
	if p := s.Config().Probe; p.Interval != DefaultProbeInterval || p.Timeout != DefaultProbeTimeout || p.Failures != DefaultProbeFailures {
		t.Errorf("defaults: %+v", p)
	}
}

// A liveness probe's failures in a row are a hard stall with source
// probe, recorded with the probe's target and last error; a pass resets
// the count.
func TestProbeStall(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "healthy")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	target := "exec:test -e " + flag + " || { echo sick >&2; exit 1; }"
	s, ev := newTestSupervisor(t, Config{
		Command:  []string{"sleep", "1000"},
		StateDir: dir,
		Restart:  RestartNever,
		Hearts:   HeartsOff,
		Probe:    ProbeConfig{Target: target, Interval: 20 * time.Millisecond, Failures: 3},
	})
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	passes := func() int {
		st, err := s.Status()
		if err != nil || len(st.Probes) != 1 {
			return 0
		}
		return st.Probes[0].Probes - st.Probes[0].Failed
	}
	waitFor(t, "three passes", func() bool { return passes() >= 3 })
	st, err := s.Status()
	if err != nil {
		t.Fatal(err)
	}
	if p := st.Probes[0]; p.Phase != "liveness" || p.State != "passing" || p.Target != target || p.Threshold != 3 {
		t.Errorf("status: %+v", p)
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	var ce *ChildExitError
	if err := <-done; !errors.As(err, &ce) || ce.Exit.Signal != "SIGKILL" {
		t.Fatalf("Serve: %v, want the child killed", err)
	}
	recs := readRecords(t, dir)
	if len(recs) != 1 || recs[0].Stall == nil {
		t.Fatalf("records: %+v", recs)
	}
	st0 := recs[0].Stall
	if st0.Source != trace.SourceProbe || st0.Stage != trace.StageHard || st0.Name != target || st0.Detail != "exit status 1: sick" || st0.Failures != 3 || st0.TimeoutMS != 60 {
		t.Errorf("stall: %+v", st0)
	}
	if n := ev.count(func(e Event) bool { f, ok := e.(ProbeFailed); return ok && !f.Ignored }); n != 3 {
		t.Errorf("%d ProbeFailed events, want 3", n)
	}
	var stalled []Stalled
	ev.count(func(e Event) bool {
		if s, ok := e.(Stalled); ok {
			stalled = append(stalled, s)
		}
		return false
	})
	if len(stalled) != 1 || !strings.Contains(stalled[0].String(), "3 probes failed in a row") {
		t.Errorf("stalled events: %v", stalled)
	}
}

// Probes stop while the child is down (between a death and the next
// start) and start again with the next child.
func TestProbesStopWhileDown(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "probes.log")
	ev := &events{}
	type stamp struct {
		what string
		at   time.Time
	}
	var mu sync.Mutex
	var stamps []stamp
	s, err := New(Config{
		Command:    []string{"sh", "-c", "sleep 0.3; exit 1"},
		StateDir:   dir,
		Restart:    RestartAlways,
		Hearts:     HeartsOff,
		BackoffMin: time.Second,
		Retries:    10,
		Probe:      ProbeConfig{Target: `exec:echo "$MTEV_PID $(date +%s%N)" >> ` + log, Interval: 20 * time.Millisecond},
	}, Options{Events: func(e Event) {
		ev.add(e)
		mu.Lock()
		defer mu.Unlock()
		switch e.(type) {
		case Started:
			stamps = append(stamps, stamp{"start", time.Now()})
		case Exited:
			stamps = append(stamps, stamp{"exit", time.Now()})
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	waitFor(t, "a second child", func() bool {
		return ev.count(func(e Event) bool { st, ok := e.(Started); return ok && st.StartCount == 2 }) == 1
	})
	pid2 := 0
	waitFor(t, "the second child's probes", func() bool {
		st, err := s.Status()
		if err != nil || len(st.Probes) == 0 || st.Probes[0].Probes == 0 {
			return false
		}
		pid2 = st.PID
		return true
	})
	s.Stop()
	<-done
	mu.Lock()
	exit1, start2 := stamps[1], stamps[2]
	mu.Unlock()
	if exit1.what != "exit" || start2.what != "start" {
		t.Fatalf("events out of order: %v", stamps)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pids := map[int]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var pid int
		var ns int64
		if _, err := fmt.Sscan(sc.Text(), &pid, &ns); err != nil {
			t.Fatalf("probe log line %q: %v", sc.Text(), err)
		}
		pids[pid]++
		at := time.Unix(0, ns)
		// A probe already running when the child ended may finish just
		// after; none starts while no child runs.
		if at.After(exit1.at.Add(100*time.Millisecond)) && at.Before(start2.at) {
			t.Errorf("a probe ran at %v, while no child ran (%v to %v)", at, exit1.at, start2.at)
		}
	}
	if len(pids) != 2 || pids[pid2] == 0 {
		t.Errorf("probes per child pid: %v, want the two children's (second %d)", pids, pid2)
	}
}

// A reload changes the probes from the next start; the running child
// keeps its own.
func TestProbesReconfigure(t *testing.T) {
	cfg := Config{
		Command: []string{"sleep", "1000"},
		Hearts:  HeartsOff,
		Probe:   ProbeConfig{Target: "exec:true", Interval: 20 * time.Millisecond},
	}
	s, _ := newTestSupervisor(t, cfg)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	defer func() { s.Stop(); <-done }()
	target := func() string {
		st, err := s.Status()
		if err != nil || len(st.Probes) != 1 {
			return ""
		}
		return st.Probes[0].Target
	}
	waitFor(t, "the first probe", func() bool { return target() == "exec:true" })
	cfg.StateDir = s.Config().StateDir
	cfg.Probe.Target = "exec:exit 0"
	if err := s.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if got := target(); got != "exec:true" {
		t.Fatalf("after the reload the running child's probe is %q, want exec:true", got)
	}
	st, _ := s.Status()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new child's probe", func() bool {
		now, err := s.Status()
		return err == nil && now.PID != st.PID && now.PID != 0 && target() == "exec:exit 0"
	})
}
