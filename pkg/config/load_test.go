package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadGolden(t *testing.T) {
	cases := []struct {
		dir  string
		kind error // nil: loads
	}{
		{"ok", nil},
		{"bad-syntax", ErrSyntax},
		{"include-missing", ErrInclude},
		{"include-cycle", ErrInclude},
		{"store-missing", ErrBackingStore},
		{"no-file-attr", ErrInclude},
		{"two-roots", ErrSyntax},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join(testdata, "load", tc.dir)
			c, err := Load(filepath.Join(dir, "main.conf"), Options{NoWriteBack: true})
			var got string
			if tc.kind == nil {
				if err != nil {
					t.Fatal(err)
				}
				got = docString(t, c)
			} else {
				if !errors.Is(err, tc.kind) {
					t.Fatalf("error %v, want %v", err, tc.kind)
				}
				var pe *Error
				if !errors.As(err, &pe) || pe.Pos.Line == 0 {
					t.Errorf("error %v carries no file:line", err)
				}
				got = err.Error() + "\n"
			}
			golden(t, filepath.Join("load", tc.dir+".golden"), got, dir)
		})
	}
}

func TestPositions(t *testing.T) {
	c, err := Load(filepath.Join(testdata, "basic", "app.conf"), Options{NoWriteBack: true, Env: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path string
		file string
		line int
	}{
		{"/app", "app.conf", 3},
		{"/app/watchdog/stall", "app.conf", 5},
		{"/app/include/listeners/listener[2]", "listeners.conf", 8},
		{"/app/include/listeners/listener/config", "listeners.conf", 6},
	}
	for _, tc := range cases {
		n, ok, err := c.Find(tc.path)
		if err != nil || !ok {
			t.Fatalf("%s: %v %v", tc.path, ok, err)
		}
		p := n.Pos()
		if filepath.Base(p.File) != tc.file || p.Line != tc.line {
			t.Errorf("%s at %v, want %s:%d", tc.path, p, tc.file, tc.line)
		}
	}
	// An attribute on a continuation line of a start tag.
	n, _, _ := c.Find("/app/include/listeners/listener")
	if p := c.t.attrPos(n.e, "type"); p.Line != 5 {
		t.Errorf("attribute type at line %d, want 5", p.Line)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	unreadable := writeFile(t, dir, "secret.conf", "<app/>")
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	incUnreadable := writeFile(t, dir, "inc.conf", "<app>\n<include file=\"secret.conf\"/>\n</app>")
	badPiece := writeFile(t, dir, "piece.conf", "<app>\n<s backingstore=\"st\"/>\n</app>")
	writeFile(t, dir, "st/0000000001.xml", "<p>\n<q></p>")
	badName := writeFile(t, dir, "name.conf", "<app>\n<s backingstore=\"st2\"/>\n</app>")
	writeFile(t, dir, "st2/notes.xml", "<p/>")
	rootStore := writeFile(t, dir, "rootstore.conf", `<app backingstore="st"/>`)
	if err := os.Mkdir(filepath.Join(dir, "adir.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	incDir := writeFile(t, dir, "incdir.conf", "<app>\n\n<include file=\"adir.conf\"/>\n</app>")
	cases := []struct {
		name, path string
		kind       error
		want       string
	}{
		{"missing root", filepath.Join(dir, "none.conf"), ErrRead, "no such file"},
		{"unreadable root", unreadable, ErrRead, "permission denied"},
		{"unreadable include", incUnreadable, ErrInclude, "inc.conf:2: permission denied reading"},
		{"bad piece", badPiece, ErrSyntax, "0000000001.xml:2:"},
		{"bad piece name", badName, ErrBackingStore, "notes.xml: not a backing store piece name"},
		{"store on root", rootStore, ErrBackingStore, "root element cannot have a backing store"},
		{"root is a directory", filepath.Join(dir, "adir.conf"), ErrRead, "cannot read " + filepath.Join(dir, "adir.conf")},
		{"include is a directory", incDir, ErrInclude, "incdir.conf:3: cannot read " + filepath.Join(dir, "adir.conf")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if os.Geteuid() == 0 && strings.Contains(tc.name, "unreadable") {
				t.Skip("root reads any file")
			}
			_, err := Load(tc.path, Options{NoWriteBack: true})
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

func TestParseBadInput(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"empty", "", "in.xml:1: no root element"},
		{"text only", "hello", "in.xml:1: text outside the root element"},
		{"unclosed", "<a>\n<b>", "in.xml:2: unexpected end of file inside <b>"},
		{"mismatch", "<a>\n</b>", "in.xml:2:"},
		{"dup attr", "<a x='1' x='2'/>", "duplicate attribute"},
		{"deep", strings.Repeat("<a>", maxDepth+2), "nested deeper"},
		{"bad entity", "<a>&nope;</a>", "in.xml:1:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("in.xml", []byte(tc.in), Options{NoWriteBack: true})
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v, want ErrSyntax", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}
