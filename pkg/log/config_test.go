package log

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/internal/syncbuf"
	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

func loadConfig(t *testing.T, body string) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.conf")
	body = strings.ReplaceAll(body, "$DIR", dir)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, config.Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cfg.Close() })
	return cfg, dir
}

func TestConfigureFrom(t *testing.T) {
	cfg, dir := loadConfig(t, `<app>
  <logs>
    <log name="main" type="file" path="$DIR/main.log" format="json" rotate_bytes="1KiB" retain_count="2"/>
    <log name="recent" type="memory" path="100,64KiB"/>
    <log name="app">
      <outlet name="main"/>
      <outlet name="recent"/>
    </log>
    <log name="app/noisy" disabled="true"/>
    <log name="debug" disabled="false" debug="true"/>
  </logs>
</app>`)
	var stderr syncbuf.Buffer
	g := New(WithStderr(&stderr))
	defer g.Close()
	if err := g.ConfigureFrom(cfg); err != nil {
		t.Fatal(err)
	}
	g.Facility("app/db").Log().Msg("db line")
	g.Facility("app/noisy").Log().Msg("not shown")
	g.Facility("debug").Log().Msg("debug line")
	if err := g.Flush(); err != nil {
		t.Fatal(err)
	}
	got := ringMessages(g.Sink("recent").(*Ring))
	if len(got) != 1 || !strings.Contains(got[0], "db line") {
		t.Errorf("ring: %v", got)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "main.log"))
	if !strings.Contains(string(data), `"message":"db line"`) {
		t.Errorf("main.log: %q", data)
	}
	if !strings.Contains(stderr.String(), "debug line") || !strings.Contains(stderr.String(), "log/config_test.go:") {
		t.Errorf("stderr: %q", stderr.String())
	}
	for _, s := range g.Stats() {
		if s.Name == "main" && (!s.Async || s.Format != "json") {
			t.Errorf("main: %+v", s)
		}
	}
}

func TestConfigureFromErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		line int
		is   error
		msg  string
	}{
		{"unknown attribute", `<app><logs>
<log name="x" colour="red"/></logs></app>`, 2, config.ErrInvalid, "colour"},
		{"missing dir", `<app><logs>
<log name="ok" type="memory" path="10"/>
<log name="f" type="file" path="$DIR/missing/f.log"/></logs></app>`, 3, os.ErrNotExist, "no such file"},
		{"cycle", `<app><logs>
<log name="a"><outlet name="b"/></log>
<log name="b"><outlet name="a"/></log></logs></app>`, 2, ErrCycle, "cycle"},
		{"unknown type", `<app><logs>

<log name="t" type="smoke-signal"/></logs></app>`, 3, ErrUnknownType, "smoke-signal"},
		{"bad name", `<app><logs>
<log name="a//b"/></logs></app>`, 2, ErrInvalid, "empty part"},
		{"duplicate", `<app><logs>
<log name="a"/>
<log name="a"/></logs></app>`, 3, ErrInvalid, "already defined"},
		{"bad size", `<app><logs>
<log name="a" type="file" path="$DIR/a.log" rotate_bytes="lots"/></logs></app>`, 2, config.ErrInvalid, "lots"},
		{"bad ring path", `<app><logs>
<log name="r" type="memory" path="many"/></logs></app>`, 2, ErrInvalid, "many"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := loadConfig(t, tt.body)
			g := New(WithStderr(&syncbuf.Buffer{}))
			defer g.Close()
			err := g.ConfigureFrom(cfg)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if want := "app.conf:" + itoa(uint64(tt.line)) + ":"; !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q, want position %s", err, want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want mention of %q", err, tt.msg)
			}
			if _, ok := g.Lookup("ok"); ok {
				t.Error("part of a failed configuration was applied")
			}
		})
	}
}
