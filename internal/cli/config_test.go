package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

var updateConfigGolden = flag.Bool("update", false, "rewrite golden files in testdata")

const configTestdata = "../../testdata/config"

// The section the fixtures in testdata/config/check are written against.
func init() {
	config.Register(config.Section{
		Path: "example",
		Doc:  "An example component, declared by the cli tests.",
		Element: config.Element{
			Attrs: []config.Attr{
				{Name: "name", Type: config.TypeString, Pattern: "[a-z]+", Required: true, Doc: "Service name."},
				{Name: "interval", Type: config.TypeDuration, Default: "10s", Doc: "How often to poll."},
			},
			Children: []config.Element{
				{Name: "size", Type: config.TypeSize, Default: "1MiB", Doc: "Buffer size."},
				{Name: "mode", Type: config.TypeEnum, Enum: []string{"fast", "safe"}, Default: "safe"},
			},
		},
	})
}

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Args0: "mtev-supervise",
		Getenv: func(k string) string { return env[k] }}
	code := Run(context.Background(), e, args)
	return code, out.String(), errb.String()
}

func configGolden(t *testing.T, name, got string) {
	t.Helper()
	got = strings.ReplaceAll(got, configTestdata, "$TESTDATA")
	path := filepath.Join(configTestdata, "cli", name)
	if *updateConfigGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestConfigCommand(t *testing.T) {
	td := configTestdata
	cases := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		golden string // compared with stdout + stderr
	}{
		{"check-good", nil, []string{"config", "check", td + "/check/good.conf"}, ExitOK, "check-good.golden"},
		{"check-bad", nil, []string{"config", "check", td + "/check/bad.conf"}, ExitUsage, "check-bad.golden"},
		{"check-syntax", nil, []string{"config", "check", td + "/load/bad-syntax/main.conf"}, ExitUsage, "check-syntax.golden"},
		{"check-cycle", nil, []string{"config", "check", td + "/load/include-cycle/main.conf"}, ExitUsage, "check-cycle.golden"},
		{"check-missing", nil, []string{"config", "check", td + "/nope.conf"}, ExitUsage, "check-missing.golden"},
		{"show", nil, []string{"config", "show", td + "/load/ok/main.conf"}, ExitOK, "show.golden"},
		{"show-raw", nil, []string{"config", "show", "--raw", td + "/load/ok/main.conf"}, ExitOK, "show-raw.golden"},
		{"show-path", map[string]string{"APP_ENV": "prod"}, []string{"config", "show", td + "/basic/app.conf", "//level"}, ExitOK, "show-path.golden"},
		{"show-nothing", nil, []string{"config", "show", td + "/basic/app.conf", "/app/none"}, ExitError, "show-nothing.golden"},
		{"show-bad-path", nil, []string{"config", "show", td + "/basic/app.conf", "/app/["}, ExitUsage, ""},
		{"no-sub", nil, []string{"config"}, ExitUsage, ""},
		{"bad-sub", nil, []string{"config", "frob"}, ExitUsage, ""},
		{"check-no-file", nil, []string{"config", "check"}, ExitUsage, ""},
		{"check-help", nil, []string{"config", "check", "--help"}, ExitOK, ""},
		{"show-too-many", nil, []string{"config", "show", "a", "b", "c"}, ExitUsage, ""},
		{"doc-args", nil, []string{"config", "doc", "x"}, ExitUsage, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.env, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			if tc.golden != "" {
				configGolden(t, tc.golden, out+errOut)
			}
		})
	}
}

func TestConfigDoc(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "config", "doc")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"## `/<app>/example`", "| `interval` | duration | `10s` |", "| `<mode>` | one of fast, safe | `safe` |"} {
		if !strings.Contains(out, want) {
			t.Errorf("doc lacks %q:\n%s", want, out)
		}
	}
}
