package watchdog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func spec(name string, deps ...string) ServiceSpec {
	return ServiceSpec{Config: Config{Name: name, Command: []string{"true"}, StateDir: "/tmp"}, Depends: deps, Pos: "f.xml:" + name}
}

func TestCheckSpecs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		specs []ServiceSpec
		order []string
		err   string
	}{
		{"chain", []ServiceSpec{spec("web", "db", "cache"), spec("db"), spec("cache", "db")}, []string{"db", "cache", "web"}, ""},
		{"cycle", []ServiceSpec{spec("a", "b"), spec("b", "c"), spec("c", "a")}, nil, "f.xml:a: dependency cycle: a -> b -> c -> a"},
		{"self", []ServiceSpec{spec("a", "a")}, nil, `f.xml:a: service "a" depends on itself`},
		{"unknown", []ServiceSpec{spec("a", "zz")}, nil, `f.xml:a: service "a" depends on unknown service "zz"`},
		{"duplicate", []ServiceSpec{spec("a"), {Config: Config{Name: "a", Command: []string{"x"}, StateDir: "/tmp"}, Pos: "f.xml:9"}}, nil, `f.xml:9: duplicate service "a" (first at f.xml:a)`},
		{"bad config", []ServiceSpec{{Config: Config{Name: "a", StateDir: "/tmp"}, Pos: "f.xml:3"}}, nil, `f.xml:3: service "a": no command to run`},
		{"bad name", []ServiceSpec{{Config: Config{Name: "a/b", Command: []string{"x"}, StateDir: "/tmp"}, Pos: "f.xml:4"}}, nil, `f.xml:4: service "a/b": name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			order, err := checkSpecs(tc.specs)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrConfig) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(order, tc.order) {
				t.Fatalf("order %v, err %v; want %v", order, err, tc.order)
			}
		})
	}
}

// fleetFixture runs services that append "<name> <pid>" to a shared file
// when they start, and "<name> stop" when they get SIGTERM.
type fleetFixture struct {
	dir, log string
}

func (fx fleetFixture) spec(name string, deps ...string) ServiceSpec {
	script := `trap 'echo "$N stop" >> "$LOG"; exit 0' TERM; echo "$N $$" >> "$LOG"; while :; do sleep 0.05; done`
	return ServiceSpec{
		Config: Config{Name: name, Command: []string{"sh", "-c", script}, StateDir: fx.dir, Env: []string{"N=" + name, "LOG=" + fx.log},
			StopTimeout: 5 * time.Second},
		Depends: deps,
	}
}

func (fx fleetFixture) events(t *testing.T) []string {
	b, _ := os.ReadFile(fx.log)
	var out []string
	for l := range strings.Lines(string(b)) {
		f := strings.Fields(l)
		if len(f) == 2 && f[1] == "stop" {
			out = append(out, f[0]+" stop")
		} else if len(f) == 2 {
			out = append(out, f[0]+" start")
		}
	}
	return out
}

func state(t *testing.T, f *Fleet, name string) ServiceStatus {
	t.Helper()
	all, err := f.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Service == name {
			return s
		}
	}
	t.Fatalf("no service %s in %v", name, all)
	return ServiceStatus{}
}

func TestFleetLifecycle(t *testing.T) {
	dir := t.TempDir()
	fx := fleetFixture{dir: dir, log: filepath.Join(dir, "log")}
	// The order in which the supervisors started their children.
	var startMu sync.Mutex
	var started []string
	track := func(sp ServiceSpec) ServiceSpec {
		name := sp.Config.Name
		sp.Options.Events = func(e Event) {
			if _, ok := e.(Started); ok {
				startMu.Lock()
				started = append(started, name)
				startMu.Unlock()
			}
		}
		return sp
	}
	specs := []ServiceSpec{track(fx.spec("web", "db")), track(fx.spec("db")), track(fx.spec("other"))}
	f, err := NewFleet(specs, FleetOptions{Name: "t", StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx) }()
	// Running, and its child wrote its start line (its TERM trap is set):
	// the line's count must reach want[name].
	want := map[string]int{}
	running := func(names ...string) func() bool {
		for _, n := range names {
			want[n]++
		}
		return func() bool {
			ev := fx.events(t)
			for _, n := range names {
				if count(ev, n+" start") < want[n] {
					return false
				}
				if s := state(t, f, n); s.PID == 0 || s.State != "running" {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "every service running", running("web", "db", "other"))
	startMu.Lock()
	if i, j := slices.Index(started, "db"), slices.Index(started, "web"); i < 0 || j < 0 || i > j {
		t.Errorf("web started before db: %v", started)
	}
	startMu.Unlock()

	// Status and control from many goroutines while services come and go.
	var wg sync.WaitGroup
	stopStatus := make(chan struct{})
	var stopOnce sync.Once
	endStatus := func() { stopOnce.Do(func() { close(stopStatus) }); wg.Wait() }
	defer endStatus()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stopStatus:
					return
				default:
				}
				if _, err := f.Status(); err != nil {
					t.Error(err)
					return
				}
				if _, err := FleetControl(context.Background(), dir, "t", "status", ""); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}

	// Stop of a dependency stops its dependent first; both stay stopped.
	if err := f.Stop("db"); err != nil {
		t.Fatal(err)
	}
	ev := fx.events(t)
	if i, j := slices.Index(ev, "web stop"), slices.Index(ev, "db stop"); i < 0 || j < 0 || i > j {
		t.Fatalf("want web stopped before db: %v", ev)
	}
	if s := state(t, f, "web"); s.State != "stopped" || s.PID != 0 {
		t.Fatalf("web after stop of db: %+v", s)
	}
	if s := state(t, f, "other"); s.State != "running" {
		t.Fatalf("other after stop of db: %+v", s)
	}
	// Start of the dependent starts its dependency first.
	if err := f.Start("web"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web and db running again", running("web", "db"))

	// Update: other changes (restarted), web is unchanged but listed
	// first (not touched), db is removed... web depends on it, so that
	// is refused and nothing changes.
	otherPID := state(t, f, "other").PID
	webPID := state(t, f, "web").PID
	if err := f.Update([]ServiceSpec{fx.spec("web", "db")}); err == nil {
		t.Fatal("update removing a dependency: no error")
	}
	changed := fx.spec("other")
	changed.Config.Env = append(changed.Config.Env, "X=1")
	if err := f.Update([]ServiceSpec{fx.spec("web", "db"), fx.spec("db"), changed, fx.spec("new", "web")}); err != nil {
		t.Fatal(err)
	}
	up := running("other", "new")
	waitFor(t, "other restarted, new started", func() bool {
		return up() && state(t, f, "other").PID != otherPID
	})
	if p := state(t, f, "web").PID; p != webPID {
		t.Fatalf("unchanged web restarted: pid %d -> %d", webPID, p)
	}
	if _, err := FleetControl(context.Background(), dir, "t", "stop", "nosuch"); err == nil || !strings.Contains(err.Error(), "no such service") {
		t.Fatalf("stop of an unknown service: %v", err)
	}
	endStatus()

	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	ev = fx.events(t)
	last := ev[len(ev)-4:]
	// Dependents first: new before web before db.
	if slices.Index(last, "new stop") > slices.Index(last, "web stop") || slices.Index(last, "web stop") > slices.Index(last, "db stop") {
		t.Fatalf("shutdown order: %v", ev)
	}
	if _, err := f.Status(); err != nil {
		t.Fatalf("status after Serve: %v", err)
	}
	if err := f.Stop(""); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("stop after Serve: %v", err)
	}
}

// The Primary's end ends the fleet, which stops the others.
func TestFleetPrimary(t *testing.T) {
	dir := t.TempDir()
	fx := fleetFixture{dir: dir, log: filepath.Join(dir, "log")}
	main := ServiceSpec{Config: Config{Name: "main", Command: []string{"sh", "-c", `while ! grep -q side "$LOG" 2>/dev/null; do sleep 0.01; done; exit 3`},
		Env: []string{"LOG=" + fx.log}, StateDir: dir, Restart: RestartNever}}
	f, err := NewFleet([]ServiceSpec{main, fx.spec("side")}, FleetOptions{StateDir: dir, Primary: "main"})
	if err != nil {
		t.Fatal(err)
	}
	err = f.Serve(context.Background())
	var ce *ChildExitError
	if !errors.As(err, &ce) || ce.Status() != 3 {
		t.Fatalf("Serve = %v, want the primary's exit 3", err)
	}
	if ev := fx.events(t); !slices.Contains(ev, "side stop") {
		t.Fatalf("side not stopped with the primary: %v", ev)
	}
}

func count(all []string, s string) int {
	n := 0
	for _, x := range all {
		if x == s {
			n++
		}
	}
	return n
}

// A dependency with hearts=require is ready at its child's first heart
// beat: its dependent starts only then.
func TestFleetHeartsReadiness(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var f *Fleet
	readyAtStart := make(chan bool, 1)
	linked := ServiceSpec{Config: Config{Name: "linked", Command: []string{exe, "-test.run=^$"}, Env: []string{testChildEnv + "=heart"},
		StateDir: dir, Hearts: HeartsRequire, HeartTimeout: time.Minute}}
	after := ServiceSpec{Config: Config{Name: "after", Command: []string{"sleep", "60"}, StateDir: dir}, Depends: []string{"linked"},
		Options: Options{Events: func(e Event) {
			if _, ok := e.(Started); ok {
				f.mu.Lock()
				r := f.svcs["linked"].ready
				f.mu.Unlock()
				select {
				case readyAtStart <- r:
				default:
				}
			}
		}}}
	f, err = NewFleet([]ServiceSpec{after, linked}, FleetOptions{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx) }()
	if r := <-readyAtStart; !r {
		t.Error("after started before linked's heart beat")
	}
	st := state(t, f, "linked")
	if st.Detail == nil || len(st.Detail.Hearts) == 0 || st.Detail.Hearts[0].Beats == 0 {
		t.Errorf("linked: %+v", st.Detail)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// A dependency with a start-up probe is ready once the probe passed: its
// dependent starts only then.
func TestFleetStartupProbeReadiness(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "up")
	var f *Fleet
	readyAtStart := make(chan bool, 1)
	db := ServiceSpec{Config: Config{Name: "db", Command: []string{"sh", "-c", `sleep 0.3; touch "$FLAG"; exec sleep 60`}, Env: []string{"FLAG=" + flag},
		StateDir: dir, StartupProbe: ProbeConfig{Target: "exec:test -f " + flag, Interval: 20 * time.Millisecond, Timeout: time.Second, Failures: 1000}}}
	web := ServiceSpec{Config: Config{Name: "web", Command: []string{"sleep", "60"}, StateDir: dir}, Depends: []string{"db"},
		Options: Options{Events: func(e Event) {
			if _, ok := e.(Started); ok {
				_, err := os.Stat(flag)
				select {
				case readyAtStart <- err == nil:
				default:
				}
			}
		}}}
	f, err := NewFleet([]ServiceSpec{web, db}, FleetOptions{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx) }()
	if r := <-readyAtStart; !r {
		t.Error("web started before db's start-up probe passed")
	}
	if st := state(t, f, "db"); st.State != "ready" {
		t.Errorf("db is %s once web started, want ready", st.State)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
