package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

func TestResolved(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "app.conf")
	inc := filepath.Join(dir, "listeners.conf")
	os.WriteFile(main, []byte(`<app lockfile="/run/{{ENV:app:{NAME}}}.lock" require_env="!NOPE">
  <include file="listeners.conf"/>
  <logs require_env="DEBUG"><log name="debug"/></logs>
  <greeting>hello {{ENV:nobody:{USER_NAME}}}</greeting>
  <mode require_env="MODE~^prod">prod</mode>
</app>
`), 0o644)
	os.WriteFile(inc, []byte(`<listeners>
  <listener address="{{ENV:0.0.0.0:{HOST}}}" port="{{ENV:8080:{PORT}}}"/>
  <listener port="443" require_env="TLS=on"/>
</listeners>
`), 0o644)
	env := func(m map[string]string) Environment {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	c, err := Load(main, Options{NoWriteBack: true, Env: env(map[string]string{"PORT": "9090", "TLS": "off", "MODE": "dev"})})
	if err != nil {
		t.Fatal(err)
	}
	got, omitted, err := c.Root().Resolved()
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(got)
	s, _ := doc.WriteToString()
	for _, want := range []string{`lockfile="/run/app.lock"`, `address="0.0.0.0" port="9090"`, "<greeting>hello nobody</greeting>"} {
		if !strings.Contains(s, want) {
			t.Errorf("resolved document lacks %s:\n%s", want, s)
		}
	}
	for _, gone := range []string{"require_env", "443", "<logs", "<mode", "include"} {
		if strings.Contains(s, gone) {
			t.Errorf("resolved document holds %s:\n%s", gone, s)
		}
	}
	var lines []string
	for _, o := range omitted {
		lines = append(lines, o.String())
	}
	want := []string{
		inc + `:3: <listener> left out: require_env="TLS=on": TLS is "off", not "on"`,
		main + `:3: <logs> left out: require_env="DEBUG": DEBUG is not set`,
		main + `:5: <mode> left out: require_env="MODE~^prod": MODE is "dev", which does not match ^prod`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("omitted:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	// Asked for by path: an element left out is an error at its
	// require_env, and so is one whose ancestor is left out.
	inact, err := c.Inactive("/app/logs/log")
	if err != nil {
		t.Fatal(err)
	}
	if len(inact) != 1 || inact[0].String() != main+`:3: <log> left out: require_env="DEBUG": DEBUG is not set` {
		t.Errorf("inactive: %v", inact)
	}
	n, ok, err := c.Find("/app/greeting")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, _, err := n.Resolved(); err != nil {
		t.Errorf("active element: %v", err)
	}

	// The whole document switched off by its root's require_env.
	c2, err := Load(main, Options{NoWriteBack: true, Env: env(map[string]string{"NOPE": ""})})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c2.Root().Resolved()
	var ce *Error
	if !errors.Is(err, ErrEnv) || !errors.As(err, &ce) || ce.Pos.Line != 1 || !strings.Contains(err.Error(), `NOPE is set`) {
		t.Errorf("inactive root: %v", err)
	}
}
