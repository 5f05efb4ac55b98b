package module

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
)

// calls records lifecycle calls of the compiled-in test modules.
var calls struct {
	sync.Mutex
	list []string
}

func record(s string) {
	calls.Lock()
	calls.list = append(calls.list, s)
	calls.Unlock()
}

func takeCalls() []string {
	calls.Lock()
	defer calls.Unlock()
	out := calls.list
	calls.list = nil
	return out
}

// recorder is a compiled-in module that records each stage and fails the
// one named by its config key fail.
type recorder struct {
	name string
	fail string
}

func (r *recorder) Config(cfg map[string]string) error {
	r.fail = cfg["fail"]
	record("config:" + cfg["tag"])
	if r.fail == "config" {
		return &KeyError{Key: "fail", Err: errors.New("refused on purpose")}
	}
	return nil
}

func (r *recorder) Init(_ context.Context, h *Host) error {
	r.name = h.Name
	record("init:" + h.Name)
	if r.fail == "init" {
		return errors.New("init refused on purpose")
	}
	return nil
}

func (r *recorder) PostInit(_ context.Context, h *Host) error {
	record("post_init:" + h.Name)
	if r.fail == "post_init" {
		return errors.New("post_init refused on purpose")
	}
	return nil
}

func (r *recorder) Close() error {
	record("close:" + r.name)
	return nil
}

func init() {
	Register("test_recorder", func() (Generic, error) {
		record("onload")
		return &recorder{}, nil
	})
	Register("test_onload_fails", func() (Generic, error) {
		return nil, errors.New("onload refused on purpose")
	})
}

// writeConfig writes an application config holding modules and returns
// it loaded.
func writeConfig(t testing.TB, dir, modules string) *config.Config {
	t.Helper()
	p := filepath.Join(dir, "app.xml")
	body := "<app>\n<modules>\n" + modules + "</modules>\n</app>\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(p, config.Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLifecycleOrder(t *testing.T) {
	cfg := writeConfig(t, t.TempDir(), `<config><tag>shared</tag></config>
<generic image="test_recorder" name="a"/>
<generic image="test_recorder" name="b"><config><tag>own</tag></config></generic>
<generic image="test_recorder" name="skipped" require_env="MTEV_MODULE_TEST_NEVER_SET"/>
`)
	takeCalls()
	set, err := Load(context.Background(), cfg, Host{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"onload", "config:shared", "init:a",
		"onload", "config:own", "init:b",
		"post_init:a", "post_init:b",
	}
	if got := takeCalls(); !slices.Equal(got, want) {
		t.Fatalf("lifecycle ran\n%v\nwant\n%v", got, want)
	}
	list := set.List()
	if len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" || list[0].Kind != "compiled-in" || list[0].Type != "generic" {
		t.Fatalf("listed %+v", list)
	}
	var b strings.Builder
	set.Show(&b)
	if b.String() != "a: test_recorder (compiled-in)\nb: test_recorder (compiled-in)\n" {
		t.Fatalf("show modules printed %q", b.String())
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	if got := takeCalls(); !slices.Equal(got, []string{"close:b", "close:a"}) {
		t.Fatalf("close ran %v, want reverse order once", got)
	}
}

func TestStageFailures(t *testing.T) {
	tests := []struct {
		name, modules string
		stage         Stage
		line          int
		calls         []string
	}{
		{"onload", `<generic image="test_recorder" name="a"/>
<generic image="test_onload_fails" name="bad"/>
<generic image="test_recorder" name="c"/>
`, StageOnload, 4, []string{"onload", "config:", "init:a", "close:a"}},
		{"config", `<generic image="test_recorder" name="bad">
  <config>
    <fail>config</fail>
  </config>
</generic>
`, StageConfig, 5, []string{"onload", "config:"}},
		{"init", `<generic image="test_recorder" name="bad"><config><fail>init</fail></config></generic>
`, StageInit, 3, []string{"onload", "config:", "init:bad", "close:bad"}},
		{"post_init", `<generic image="test_recorder" name="a"/>
<generic image="test_recorder" name="bad"><config><fail>post_init</fail></config></generic>
<generic image="test_recorder" name="c"/>
`, StagePostInit, 4, []string{"onload", "config:", "init:a", "onload", "config:", "init:bad", "onload", "config:", "init:c", "post_init:a", "post_init:bad", "close:c", "close:bad", "close:a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeConfig(t, t.TempDir(), tt.modules)
			takeCalls()
			set, err := Load(context.Background(), cfg, Host{})
			if set != nil {
				t.Fatal("a failed load returned a set")
			}
			var se *StageError
			if !errors.As(err, &se) || !errors.Is(err, ErrStage) {
				t.Fatalf("error %v is not a stage error", err)
			}
			if se.Module != "bad" || se.Stage != tt.stage || se.Pos.Line != tt.line {
				t.Fatalf("error names %s at %s line %d: %v", se.Module, se.Stage, se.Pos.Line, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("app.xml:%d: module bad (", tt.line)) || !strings.Contains(msg, ": "+string(tt.stage)+": ") {
				t.Fatalf("message %q does not name file:line, module and stage", msg)
			}
			if got := takeCalls(); !slices.Equal(got, tt.calls) {
				t.Fatalf("ran %v, want %v", got, tt.calls)
			}
		})
	}
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "plain-file")
	os.WriteFile(notExec, []byte("x"), 0o644)
	tests := []struct{ name, modules, want string }{
		{"unknown attribute", `<generic image="test_recorder" colour="red"/>
`, `app.xml:3: `},
		{"unknown element", `<loader image="lua"/>
`, `app.xml:3: `},
		{"missing image", `<generic name="x"/>
`, `app.xml:3: `},
		{"duplicate", `<generic image="test_recorder" name="x"/>
<generic image="test_recorder" name="x"/>
`, `app.xml:4: module x: duplicate module (first at `},
		{"unknown image", `<generic image="no_such_module"/>
`, `app.xml:3: module no_such_module: image no_such_module: unknown module image: not compiled in`},
		{"not executable", `<generic image="./plain-file"/>
`, `app.xml:3: module ./plain-file: image ./plain-file: unknown module image: ` + notExec + ` is not an executable file`},
		{"not on the search path", `<generic image="absent"/>
`, `app.xml:3: module absent: image absent: unknown module image: not compiled in and not found (looked for ` + dir + `/absent)`},
		{"process attribute on compiled-in", `<generic image="test_recorder" heartbeat="1s"/>
`, `app.xml:3: module test_recorder: heartbeat applies to executable modules only`},
		{"bad duration", `<generic image="./plain-file" heartbeat="soon"/>
`, `app.xml:3: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "app.xml")
			os.WriteFile(p, []byte("<app>\n<modules directory=\".\">\n"+tt.modules+"</modules>\n</app>\n"), 0o644)
			cfg, err := config.Load(p, config.Options{NoWriteBack: true})
			if err == nil {
				defer cfg.Close()
				_, err = Load(context.Background(), cfg, Host{})
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRegisterPanics(t *testing.T) {
	for name, fn := range map[string]func(){
		"duplicate": func() { Register("test_recorder", func() (Generic, error) { return nil, nil }) },
		"empty":     func() { Register("", func() (Generic, error) { return nil, nil }) },
		"nil":       func() { Register("test_nil_onload", nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s registration did not panic", name)
				}
			}()
			fn()
		}()
	}
	if !slices.Contains(Images(), "test_recorder") {
		t.Fatalf("Images() = %v", Images())
	}
}

func TestPostInitHookAbort(t *testing.T) {
	PostInitHook.Register("test", func(s *Set) hook.Result {
		if s.Instance("abort-me") != nil {
			return hook.Abort
		}
		return hook.Continue
	})
	cfg := writeConfig(t, t.TempDir(), `<generic image="test_recorder" name="abort-me"/>
`)
	takeCalls()
	set, err := Load(context.Background(), cfg, Host{})
	if set != nil || !errors.Is(err, ErrPostInitHook) {
		t.Fatalf("dso_post_init ABORT: set %v, error %v", set, err)
	}
	if got := takeCalls(); !slices.Equal(got, []string{"onload", "config:", "init:abort-me", "post_init:abort-me", "close:abort-me"}) {
		t.Fatalf("ran %v", got)
	}
}

// Specs built in code: an image that is not compiled in is refused, and
// a module process gets the section's defaults.
func TestStartFromSpecs(t *testing.T) {
	_, err := Start(context.Background(), []Spec{{Image: "nowhere", Name: "x"}}, Host{})
	if !errors.Is(err, ErrUnknownImage) || !errors.Is(err, ErrStage) {
		t.Fatalf("unknown image: %v", err)
	}
	var p Process
	p.fill()
	if p.Heartbeat != time.Second || p.HeartbeatTimeout != 5*time.Second || p.HookTimeout != time.Second || p.CallTimeout != 30*time.Second || p.RestartBackoff != 100*time.Millisecond || p.RestartBackoffMax != 30*time.Second {
		t.Fatalf("defaults %+v", p)
	}
}
