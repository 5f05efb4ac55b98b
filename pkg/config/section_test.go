package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exampleSection is the declaration used by the section tests and by the
// testdata/config/check fixtures.
var exampleSection = Section{
	Path: "example",
	Doc:  "An example component.",
	Element: Element{
		Attrs: []Attr{
			{Name: "name", Type: TypeString, Pattern: "[a-z]+", Required: true, Doc: "Service name."},
			{Name: "interval", Type: TypeDuration, Default: "10s", Doc: "How often to poll."},
		},
		Children: []Element{
			{Name: "size", Type: TypeSize, Default: "1MiB", Doc: "Buffer size."},
			{Name: "mode", Type: TypeEnum, Enum: []string{"fast", "safe"}, Default: "safe", Doc: "Operating mode | pipe."},
			{Name: "peer", Repeated: true, Doc: "A peer.", Attrs: []Attr{{Name: "addr", Required: true, Type: TypeString}}},
			{Name: "config", Open: true, Doc: "Free-form key/values."},
		},
	},
}

func TestValidateReportsAll(t *testing.T) {
	_, err := Load(filepath.Join(testdata, "check", "bad.conf"), Options{NoWriteBack: true, Sections: []Section{exampleSection}})
	probs := Problems(err)
	want := []string{
		`bad.conf:2: attribute "interval" of <example>: "five seconds" is not a duration`,
		`bad.conf:2: unknown attribute "colour" on <example> (known: name, interval)`,
		`bad.conf:3: <size>: "lots" is not a size`,
		`bad.conf:4: <mode>: "warp" is not one of fast, safe`,
		`bad.conf:5: unknown element <bogus> in <example> (known: size, mode, peer, config)`,
		`bad.conf:7: require_env "=x": no variable name`,
	}
	if len(probs) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(probs), len(want), err)
	}
	text := err.Error()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("missing problem %q in\n%s", w, text)
		}
	}
	for _, p := range probs {
		if !errors.Is(p, ErrInvalid) {
			t.Errorf("problem %v is not ErrInvalid", p)
		}
	}
}

func TestValidateCases(t *testing.T) {
	cases := []struct {
		name, doc string
		sec       Section
		want      string // "" means valid
	}{
		{"good", `<app><example name="x"><peer addr="a"/><peer addr="b"/><config><k>v</k></config></example></app>`, exampleSection, ""},
		{"absent optional", `<app/>`, exampleSection, ""},
		{"required section", `<app/>`, Section{Path: "must", Required: true}, "c.xml:1: missing required section must"},
		{"repeated section", "<app><example name='a'/>\n<example name='b'/></app>", exampleSection, "c.xml:2: section example appears more than once"},
		{"missing attr", `<app><example/></app>`, exampleSection, `lacks required attribute "name"`},
		{"pattern", `<app><example name="X1"/></app>`, exampleSection, `"X1" does not match [a-z]+`},
		{"twice", "<app><example name='a'><size>1</size>\n<size>2</size></example></app>", exampleSection, "c.xml:2: <size> may appear only once"},
		{"nested attr", `<app><example name="a"><peer/></example></app>`, exampleSection, `<peer> lacks required attribute "addr"`},
		{"text", `<app><example name="a">hello</example></app>`, exampleSection, "<example> takes no text"},
		{"absolute path", `<app><x><y bad="1"/></x></app>`, Section{Path: "/app/x/y"}, `unknown attribute "bad"`},
		{"absolute other root", `<other><x><y bad="1"/></x></other>`, Section{Path: "/app/x/y"}, ""},
		{"interpolated", `<app><example name="a" interval="{{ENV:5s:{NOPE}}}"/></app>`, exampleSection, ""},
		{"through include is tested elsewhere; gated", `<app><example require_env="NOPE" bogus="1"/></app>`, exampleSection, ""},
		{"bad declaration", `<app/>`, Section{Path: "p", Element: Element{Attrs: []Attr{{Name: "a", Type: TypeInt, Default: "x"}}}}, "section declaration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("c.xml", []byte(tc.doc), Options{NoWriteBack: true, Env: envMap()})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate(tc.sec)
			if tc.want == "" {
				if err != nil {
					t.Errorf("unexpected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestValidateThroughInclude(t *testing.T) {
	dir := t.TempDir()
	root := writeFile(t, dir, "app.conf", "<app>\n  <include file=\"inc.conf\"/>\n</app>\n")
	writeFile(t, dir, "inc.conf", "<x>\n  <example name=\"a\">\n    <nope/>\n  </example>\n</x>\n")
	_, err := Load(root, Options{NoWriteBack: true, Sections: []Section{exampleSection}})
	if err == nil || !strings.Contains(err.Error(), "inc.conf:3: unknown element <nope>") {
		t.Fatalf("got %v", err)
	}
}

func TestSectionValues(t *testing.T) {
	c, err := Load(filepath.Join(testdata, "check", "good.conf"), Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Section(exampleSection)
	if err != nil {
		t.Fatal(err)
	}
	if v.String("@name") != "svc" || v.Duration("@interval") != 5*time.Second || v.Size("size") != 64<<20 || v.String("mode") != "fast" {
		t.Errorf("values: %q %v %d %q", v.String("@name"), v.Duration("@interval"), v.Size("size"), v.String("mode"))
	}
	if len(v.Children("peer")) != 0 {
		t.Error("phantom peers")
	}
	// Absent section: declared defaults.
	empty, err := Parse("e.xml", []byte("<app/>"), Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	d, err := empty.Section(exampleSection)
	if err != nil {
		t.Fatal(err)
	}
	if d.Node().Valid() || d.Duration("@interval") != 10*time.Second || d.Size("size") != 1<<20 || d.String("mode") != "safe" {
		t.Errorf("defaults: %v %d %q", d.Duration("@interval"), d.Size("size"), d.String("mode"))
	}
	bad, err := Parse("b.xml", []byte(`<app><example name="UPPER"/></app>`), Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Section(exampleSection); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid section decoded: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("undeclared name did not panic")
		}
	}()
	v.String("undeclared")
}

// registerRuns makes the registered path unique when the test runs more
// than once in a process (-count): the registry is global.
var registerRuns int

func TestRegister(t *testing.T) {
	registerRuns++
	s := Section{Path: fmt.Sprintf("test-register-%d", registerRuns), Element: Element{Attrs: []Attr{{Name: "a", Type: TypeBool, Default: "yes"}}}}
	Register(s)
	found := false
	for _, r := range Registered() {
		found = found || r.Path == s.Path
	}
	if !found {
		t.Error("registered section not listed")
	}
	for name, bad := range map[string]Section{
		"duplicate":  s,
		"bad regexp": {Path: "x-re", Element: Element{Attrs: []Attr{{Name: "a", Pattern: "("}}}},
		"empty enum": {Path: "x-enum", Element: Element{Children: []Element{{Name: "e", Type: TypeEnum}}}},
		"dup name":   {Path: "x-dup", Element: Element{Attrs: []Attr{{Name: "a"}, {Name: "a"}}}},
		"empty path": {Path: "/"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Register did not panic", name)
				}
			}()
			Register(bad)
		}()
	}
}

func TestMarkdown(t *testing.T) {
	var b strings.Builder
	if err := Markdown(&b, exampleSection, Section{Path: "/app/flag", Required: true, Element: Element{Type: TypeBool, Default: "no", Pattern: "yes|no"}}); err != nil {
		t.Fatal(err)
	}
	golden(t, "markdown.golden", b.String(), "")
}
