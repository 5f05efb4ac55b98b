package config

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadBasic(t testing.TB, env Environment) *Config {
	t.Helper()
	c, err := Load(filepath.Join(testdata, "basic", "app.conf"), Options{NoWriteBack: true, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGetters(t *testing.T) {
	c := loadBasic(t, envMap("SOFT", "3s"))
	check := func(name string, got, want any, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	s, err := c.String("/app/watchdog/@glider", "x")
	check("string attr", s, "/usr/bin/true", err)
	s, err = c.String("/app/missing", "dflt")
	check("string default", s, "dflt", err)
	s, err = c.String("/app/@lockfile", "")
	check("root attr", s, "/var/run/app.lock", err)
	d, err := c.Duration("/app/watchdog/stall", 0)
	check("duration", d, 250*time.Millisecond, err)
	d, err = c.Duration("/app/watchdog/@timeout", 0)
	check("duration attr", d, 5*time.Second, err)
	d, err = c.Duration("/app/watchdog/@soft", 0)
	check("interpolated duration", d, 3*time.Second, err)
	d, err = c.Duration("/app/watchdog/@nothing", time.Minute)
	check("duration default", d, time.Minute, err)
	z, err := c.Size("/app/watchdog/ring", 0)
	check("size", z, int64(64<<20), err)
	f, err := c.Float("/app/watchdog/ratio", 0)
	check("float", f, 0.75, err)
	i, err := c.Int("/app/watchdog/restarts", 0)
	check("int", i, int64(3), err)
	b, err := c.Bool("/app/watchdog/enabled", false)
	check("bool", b, true, err)
	i, err = c.Int("/app/port", 0)
	check("env default", i, int64(8080), err)
	s, err = c.String("/app/include/listeners/listener[2]/@port", "")
	check("included", s, "32322", err)

	// Mistyped values name file and line and return the default.
	_, err = c.Int("/app/watchdog/stall", 7)
	var pe *Error
	if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) || pe.Pos.Line != 5 || !strings.HasSuffix(pe.Pos.File, "app.conf") {
		t.Errorf("bad int: %v", err)
	}
	_, err = c.Duration("/app/watchdog/@glider", 0)
	if !errors.As(err, &pe) || pe.Pos.Line != 4 {
		t.Errorf("bad duration attr: %v", err)
	}
	if _, err := c.String("/app/[", ""); !errors.Is(err, ErrPath) {
		t.Errorf("bad path: %v", err)
	}
}

func TestInheritedAttr(t *testing.T) {
	c := loadBasic(t, envMap())
	cases := []struct {
		node, attr, want string
		ok               bool
	}{
		{"/app/a", "foo", "bar", true},
		{"/app/a/b", "foo", "bar", true},
		{"/app/a/b/c", "foo", "meme", true},
		{"/app/a", "quux", "", false},
		{"/app/a/b", "quux", "baz", true},
		{"/app/a/b/c", "quux", "baz", true},
		{"/app/a/b/c", "lockfile", "/var/run/app.lock", true},
	}
	for _, tc := range cases {
		n, ok, err := c.Find(tc.node)
		if err != nil || !ok {
			t.Fatalf("%s: %v", tc.node, err)
		}
		got, ok := n.InheritedAttr(tc.attr)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s @%s = %q,%v want %q,%v", tc.node, tc.attr, got, ok, tc.want, tc.ok)
		}
		// The getter form agrees.
		s, err := c.String(tc.node+"/ancestor-or-self::node()/@"+tc.attr, "")
		if err != nil || s != tc.want {
			t.Errorf("getter %s: %q %v", tc.node, s, err)
		}
	}
}

func TestHash(t *testing.T) {
	c := loadBasic(t, envMap())
	cases := []struct {
		path string
		want map[string]string
	}{
		{"/app/a", map[string]string{"key1": "val a 1", "key2": "val a 2"}},
		{"/app/a/b", map[string]string{"key1": "val b 1", "key2": "val a 2", "key3": "val b 3"}},
		{"/app/a/b/c", map[string]string{"key1": "val b 1", "key2": "val a 2", "key3": "val b 3"}},
		{"/app/d", map[string]string{"key1": "AAA", "key2": "bobB", "key5": "bobE"}},
		{"/app/include/listeners/listener", map[string]string{"document_root": "/var/www"}},
		{"/app/watchdog", map[string]string{}},
	}
	for _, tc := range cases {
		got, err := c.Hash(tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if !maps.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestHashInheritErrors(t *testing.T) {
	c, err := Parse("h.xml", []byte(`<app>
<x><config id="p" inherit="q"><k>1</k></config></x>
<y><config id="q" inherit="p"><k>2</k></config></y>
<z><config inherit="none"/></z>
</app>`), Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Hash("/app/x"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: %v", err)
	}
	if _, err := c.Hash("/app/z"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "h.xml:4") {
		t.Errorf("missing id: %v", err)
	}
}

func TestRequireEnvElements(t *testing.T) {
	cases := []struct {
		name string
		env  Environment
		want []string // which gated elements count
	}{
		{"none", envMap(), []string{"nonprod"}},
		{"debug", envMap("APP_DEBUG", ""), []string{"debugonly", "nonprod"}},
		{"prod", envMap("APP_ENV", "prod"), []string{"prod", "matched"}},
		{"preview", envMap("APP_ENV", "preview"), []string{"matched"}},
		{"dev", envMap("APP_ENV", "dev"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := loadBasic(t, tc.env)
			var got []string
			for _, tag := range []string{"debugonly", "prod", "nonprod", "matched"} {
				if _, ok, _ := c.Find("/app/" + tag); ok {
					got = append(got, tag)
				}
				// Invisible below too.
				if _, ok, _ := c.Find("/app/" + tag + "/level"); ok != contains(got, tag) {
					t.Errorf("%s/level visibility %v", tag, ok)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("counted %v, want %v", got, tc.want)
			}
		})
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func TestRequireEnvExpr(t *testing.T) {
	env := envMap("A", "alpha", "E", "")
	cases := []struct {
		expr    string
		want    bool
		wantErr bool
	}{
		{"A", true, false},
		{"E", true, false},
		{"B", false, false},
		{"!B", true, false},
		{"!A", false, false},
		{"A=alpha", true, false},
		{"A=beta", false, false},
		{"B=", false, false},
		{"E=", true, false},
		{"!A=beta", true, false},
		{"A~^al", true, false},
		{"A~^be", false, false},
		{"A~(", false, true},
		{"=x", false, true},
		{"", false, true},
	}
	for _, tc := range cases {
		got, err := requireEnv(tc.expr, env)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("requireEnv(%q) = %v, %v", tc.expr, got, err)
		}
	}
}

func TestInterpolate(t *testing.T) {
	env := envMap("PORT", "9000", "HOST", "db", "EMPTY", "")
	cases := []struct{ in, want string }{
		{"plain", "plain"},
		{"{{ENV:8080:{PORT}}}", "9000"},
		{"{{ENV:8080:{NOPE}}}", "8080"},
		{"http://{{ENV:localhost:{HOST}}}:{{ENV:80:{PORT}}}/x", "http://db:9000/x"},
		{"{{ENV::{HOST}:{PORT}}}", "db:9000"},
		{"{{ENV:none:{HOST}:{NOPE}}}", "none"},
		{"{{ENV:d:{EMPTY}}}", ""},
		{"ENV:8080:{PORT}", "9000"},
		{"ENV:8080:{NOPE}", "8080"},
		{"ENV:x", "ENV:x"},
		{"{{ENV:nobraces}}", "{{ENV:nobraces}}"},
		{"{{hwloc:1:{cores}}}", "{{hwloc:1:{cores}}}"},
		{"{{ENV:unterminated", "{{ENV:unterminated"},
		{"a{{ENV:x:{PORT}}}b{{ENV:y:{NOPE}}}c", "a9000byc"},
	}
	for _, tc := range cases {
		if got := interpolate(tc.in, env); got != tc.want {
			t.Errorf("interpolate(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseValues(t *testing.T) {
	sizes := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"512", 512, true}, {"64MiB", 64 << 20, true}, {"10MB", 10e6, true}, {"1.5GiB", 3 << 29, true},
		{"4k", 4096, true}, {"2 KiB", 2048, true}, {"1B", 1, true},
		{"-1", 0, false}, {"1.5", 0, false}, {"lots", 0, false}, {"99999999TiB", 0, false}, {"", 0, false},
	}
	for _, tc := range sizes {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
	durs := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"250ms", 250 * time.Millisecond, true}, {"5s", 5 * time.Second, true}, {"1h30m", 90 * time.Minute, true},
		{"2d", 48 * time.Hour, true}, {"1w", 168 * time.Hour, true}, {"0", 0, true},
		{"5", 0, false}, {"soon", 0, false}, {"-d", 0, false},
	}
	for _, tc := range durs {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v", tc.in, got, err)
		}
	}
	bools := map[string]bool{"true": true, "Yes": true, "on": true, "1": true, "false": false, "no": false, "OFF": false, "0": false}
	for in, want := range bools {
		if got, err := ParseBool(in); err != nil || got != want {
			t.Errorf("ParseBool(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseBool("maybe"); err == nil {
		t.Error("ParseBool(maybe) succeeded")
	}
	if _, err := ParseFloat("NaN"); err == nil {
		t.Error("ParseFloat(NaN) succeeded")
	}
}

// TestHashDiamond: an element inherited through many paths is merged once
// per Hash, so 40 levels of two-way inheritance finish instead of taking
// 2^40 steps.
func TestHashDiamond(t *testing.T) {
	var b strings.Builder
	b.WriteString("<app>")
	const levels = 40
	for i := range levels {
		if i == levels-1 {
			fmt.Fprintf(&b, "<n%d id=\"n%d\"><config><last>yes</last></config></n%d>", i, i, i)
			break
		}
		fmt.Fprintf(&b, "<n%d id=\"n%d\"><config inherit=\"n%d\"><k%d>v</k%d></config><config inherit=\"n%d\"/></n%d>",
			i, i, i+1, i, i, i+1, i)
	}
	b.WriteString("</app>")
	c, err := Parse("d.xml", []byte(b.String()), Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Hash("/app/n0")
	if err != nil {
		t.Fatal(err)
	}
	if h["last"] != "yes" || h["k0"] != "v" || h["k38"] != "v" {
		t.Errorf("hash %v", h)
	}
}
