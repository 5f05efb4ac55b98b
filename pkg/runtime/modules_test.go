package runtime

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/module"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

var steps struct {
	sync.Mutex
	list []string
}

func step(s string) {
	steps.Lock()
	steps.list = append(steps.list, s)
	steps.Unlock()
}

// stepModule records its stages; it checks that the eventer runs by
// posting to a loop from Init.
type stepModule struct{ greeting string }

func (m *stepModule) Config(cfg map[string]string) error {
	m.greeting = cfg["greeting"]
	step("config " + m.greeting)
	return nil
}

func (m *stepModule) Init(_ context.Context, h *module.Host) error {
	done := make(chan struct{})
	if err := h.Eventer.Default().Loop(0).Post(func() { close(done) }); err != nil {
		return err
	}
	<-done
	step("init " + h.Name)
	return nil
}

func (m *stepModule) PostInit(_ context.Context, h *module.Host) error {
	step("post_init " + h.Name)
	return nil
}

func (m *stepModule) Close() error { step("close"); return nil }

func init() {
	module.Register("runtime_test_module", func() (module.Generic, error) { return &stepModule{}, nil })
	ChildStartHook.Register("runtime_test", func(c ChildStart) hook.Result {
		if c.Name != "modules-app" {
			return hook.Continue
		}
		step("child_start")
		if c.Runtime.Modules == nil || len(c.Runtime.Modules.List()) != 1 || c.PID != os.Getpid() {
			step("child_start without its modules")
		}
		if os.Getenv("MTEV_RUNTIME_TEST_ABORT_START") == "1" {
			return hook.Abort
		}
		return hook.Continue
	})
}

// Modules come up after the eventer and before App.Start, child_start
// runs between, and they are closed when the service ends.
func TestModulesAndChildStart(t *testing.T) {
	t.Setenv(ForegroundEnv, "1")
	dir := t.TempDir()
	cfg := dir + "/app.xml"
	os.WriteFile(cfg, []byte(`<app>
  <modules>
    <generic image="runtime_test_module" name="greeter"><config><greeting>hello</greeting></config></generic>
  </modules>
</app>
`), 0o644)
	run := func() int {
		return ExitStatus(Run(context.Background(), App{Name: "modules-app", ConfigFile: cfg,
			Start: func(ctx context.Context, rt *Runtime) error { step("app start"); return nil },
			Run:   func(ctx context.Context, rt *Runtime) error { return nil }}))
	}
	steps.list = nil
	if code := run(); code != 0 {
		t.Fatalf("status %d", code)
	}
	want := []string{"config hello", "init greeter", "post_init greeter", "child_start", "app start", "close"}
	if !slices.Equal(steps.list, want) {
		t.Fatalf("steps %v, want %v", steps.list, want)
	}

	// ABORT from child_start stops the start: App.Start never runs.
	t.Setenv("MTEV_RUNTIME_TEST_ABORT_START", "1")
	steps.list = nil
	if code := run(); code != 1 {
		t.Fatalf("aborted start: status %d", code)
	}
	if slices.Contains(steps.list, "app start") || !slices.Contains(steps.list, "close") {
		t.Fatalf("aborted start ran %v", steps.list)
	}

	// An unknown attribute is refused with file:line before anything runs.
	os.WriteFile(cfg, []byte("<app>\n  <modules>\n    <generic image=\"runtime_test_module\" colour=\"red\"/>\n  </modules>\n</app>\n"), 0o644)
	steps.list = nil
	if code := run(); code != watchdog.ExitConfig || len(steps.list) != 0 {
		t.Fatalf("bad modules section: status %d, ran %v", code, steps.list)
	}

	// A module image nobody registered is a configuration problem too.
	os.WriteFile(cfg, []byte("<app>\n  <modules>\n    <generic image=\"no_such_image\" name=\"x\"/>\n  </modules>\n</app>\n"), 0o644)
	steps.list = nil
	if code := run(); code != watchdog.ExitConfig || len(steps.list) != 0 {
		t.Fatalf("unknown image: status %d, ran %v", code, steps.list)
	}
}
