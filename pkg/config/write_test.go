package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestIncludeWriteBack(t *testing.T) {
	dir := copyTree(t, filepath.Join(testdata, "basic"))
	root := filepath.Join(dir, "app.conf")
	inc := filepath.Join(dir, "conf.d", "listeners.conf")
	rootBefore := readFile(t, root)
	c, err := Load(root, Options{NoWriteBack: true, Env: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	gen := c.Generation()
	if err := c.Set("/app/include/listeners/listener[2]/@port", "40000"); err != nil {
		t.Fatal(err)
	}
	if c.Generation() == gen {
		t.Error("generation not bumped")
	}
	if err := c.Add("/app/include/listeners", `<listener address="::1" port="1" type="http"/>`); err != nil {
		t.Fatal(err)
	}
	if n := c.Pending(); n != 1 {
		t.Errorf("pending %d files, want 1", n)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, root); got != rootBefore {
		t.Errorf("root file rewritten:\n%s", got)
	}
	golden(t, "writeback/listeners.golden", readFile(t, inc), "")

	// A change in the root file leaves the include alone.
	incBefore := readFile(t, inc)
	if err := c.Set("/app/watchdog/stall", "1s"); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if readFile(t, inc) != incBefore {
		t.Error("include rewritten by a root change")
	}
	if got := readFile(t, root); !strings.Contains(got, "<stall>1s</stall>") || !strings.Contains(got, `<include file="conf.d/listeners.conf"/>`) {
		t.Errorf("root file after change:\n%s", got)
	}
}

func TestRoundTrip(t *testing.T) {
	dir := copyTree(t, filepath.Join(testdata, "load", "ok"))
	root := filepath.Join(dir, "main.conf")
	c, err := Load(root, Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { return c.Set("/app/include/x", "uno") },
		func() error { return c.Set("/app/include/x/@b", "new & <odd> \"quoted\"") },
		func() error { return c.Set("/app/include[2]/y", "dos") },
		func() error { return c.Add("/app/include[2]", `<w k="v">text<!-- note --></w>`) },
		func() error { return c.Set("/app/big/item[2]/deep", "changed") },
		func() error { return c.Add("/app/big", `<item n="3"/>`) },
		func() error { return c.Remove("/app/big/item[1]") },
		func() error { return c.Add("/app", `<tail><![CDATA[raw <data>]]></tail>`) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := docString(t, c)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c2, err := Load(root, Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := docString(t, c2); got != want {
		t.Errorf("reloaded document differs:\n--- got\n%s\n--- want\n%s", got, want)
	}
	// The removed piece's file is gone, the new one exists.
	if _, err := os.Stat(filepath.Join(dir, "store", "0000000001.xml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("removed piece still on disk: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "store", "0000000003.xml")); err != nil {
		t.Errorf("added piece: %v", err)
	}
	golden(t, "writeback/roundtrip.golden", want, "")
}

// shatteredTree writes a root file with a backing store of n pieces.
func shatteredTree(t testing.TB, n int) string {
	dir := t.TempDir()
	root := writeFile(t, dir, "app.conf", "<app>\n  <checks backingstore=\"checks\"/>\n</app>\n")
	if err := os.Mkdir(filepath.Join(dir, "checks"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		writeFile(t, dir, filepath.Join("checks", pieceName(i)),
			fmt.Sprintf("<check id=\"c%d\" period=\"5s\"><target>10.0.0.%d</target></check>\n", i, i%250))
	}
	return root
}

func TestShatteredWritesOneFile(t *testing.T) {
	root := shatteredTree(t, 300)
	c, err := Load(root, Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.Files()); got != 301 {
		t.Fatalf("read %d files, want 301", got)
	}
	n, _, _ := c.Find("/app/checks/check[@id='c150']/target")
	if p := n.Pos(); filepath.Base(p.File) != pieceName(150) || p.Line != 1 {
		t.Errorf("piece element at %v", p)
	}
	cases := []struct {
		name   string
		change func() error
		check  func(t *testing.T, dir string)
	}{
		{"set", func() error { return c.Set("/app/checks/check[@id='c150']/target", "10.1.1.1") }, func(t *testing.T, dir string) {
			if !strings.Contains(readFile(t, filepath.Join(dir, pieceName(150))), "10.1.1.1") {
				t.Error("piece not rewritten")
			}
		}},
		{"add", func() error { return c.Add("/app/checks", `<check id="c301"/>`) }, func(t *testing.T, dir string) {
			if !strings.Contains(readFile(t, filepath.Join(dir, pieceName(301))), `id="c301"`) {
				t.Error("new piece missing")
			}
		}},
		{"remove", func() error { return c.Remove("/app/checks/check[@id='c7']") }, func(t *testing.T, dir string) {
			if _, err := os.Stat(filepath.Join(dir, pieceName(7))); !errors.Is(err, os.ErrNotExist) {
				t.Error("removed piece still present")
			}
		}},
		{"attr", func() error { return c.Set("/app/checks/check[@id='c9']/@period", "1s") }, func(t *testing.T, dir string) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rootBefore := readFile(t, root)
			if err := tc.change(); err != nil {
				t.Fatal(err)
			}
			st, err := c.flush()
			if err != nil {
				t.Fatal(err)
			}
			if st.files != 1 {
				t.Errorf("one change wrote %d files, want 1", st.files)
			}
			if readFile(t, root) != rootBefore {
				t.Error("root file rewritten")
			}
			tc.check(t, filepath.Join(filepath.Dir(root), "checks"))
		})
	}
	want := docString(t, c)
	c2, err := Load(root, Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := docString(t, c2); got != want {
		t.Errorf("reloaded shattered tree differs")
	}
}

func TestShatterMigratesInlineChildren(t *testing.T) {
	dir := t.TempDir()
	root := writeFile(t, dir, "app.conf", "<app>\n  <s backingstore=\"st\">\n    <a/>\n    <b/>\n  </s>\n</app>\n")
	if err := os.Mkdir(filepath.Join(dir, "st"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Load(root, Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	want := docString(t, c)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, root); strings.Contains(got, "<a/>") {
		t.Errorf("inline children still in root file:\n%s", got)
	}
	for i, tag := range []string{"a", "b"} {
		if got := readFile(t, filepath.Join(dir, "st", pieceName(i+1))); !strings.Contains(got, "<"+tag+"/>") {
			t.Errorf("piece %d = %q", i+1, got)
		}
	}
	c2, err := Load(root, Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(docString(t, c2), "<a/>") != 1 || strings.Count(want, "<a/>") != 1 {
		t.Error("migrated element lost or duplicated")
	}
	// A migrated piece removed later has its file deleted.
	if err := c.Remove("/app/s/a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c3, err := Load(root, Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(docString(t, c3), "<a/>") {
		t.Error("removed migrated piece came back")
	}
}

func TestCoalescedWriteBack(t *testing.T) {
	dir := copyTree(t, filepath.Join(testdata, "basic"))
	root := filepath.Join(dir, "app.conf")
	clock := &fakeClock{}
	var writeErrs []error
	c, err := Load(root, Options{Clock: clock, Env: envMap(), OnWriteError: func(err error) { writeErrs = append(writeErrs, err) }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := c.Set("/app/watchdog/restarts", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(clock.pending) != 1 {
		t.Fatalf("%d timers for a burst, want 1", len(clock.pending))
	}
	if strings.Contains(readFile(t, root), "<restarts>49<") {
		t.Fatal("written before the coalescing delay")
	}
	if clock.Fire() != 1 {
		t.Fatal("timer did not run")
	}
	if !strings.Contains(readFile(t, root), "<restarts>49</restarts>") {
		t.Error("burst not written")
	}
	if c.Pending() != 0 || len(writeErrs) != 0 {
		t.Errorf("pending %d, errors %v", c.Pending(), writeErrs)
	}
	// A later change arms a new timer; Close flushes it.
	if err := c.Set("/app/watchdog/restarts", "100"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if !strings.Contains(readFile(t, root), "<restarts>100</restarts>") {
		t.Error("Close did not flush")
	}
	if err := c.Set("/app/watchdog/restarts", "1"); !errors.Is(err, ErrClosed) {
		t.Errorf("change after Close: %v", err)
	}
}

func TestNoWriteBack(t *testing.T) {
	dir := copyTree(t, filepath.Join(testdata, "basic"))
	root := filepath.Join(dir, "app.conf")
	before := readFile(t, root)
	clock := &fakeClock{}
	c, err := Load(root, Options{NoWriteBack: true, Clock: clock, Env: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("/app/watchdog/restarts", "9"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if len(clock.pending) != 0 || readFile(t, root) != before {
		t.Error("write-back ran while disabled")
	}
	if v, _ := c.Int("/app/watchdog/restarts", 0); v != 9 {
		t.Errorf("in-memory value %d", v)
	}
}

func TestWriteKeepsMode(t *testing.T) {
	dir := copyTree(t, filepath.Join(testdata, "basic"))
	root := filepath.Join(dir, "app.conf")
	if err := os.Chmod(root, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(root, Options{NoWriteBack: true, Env: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("/app/@workingdir", "/srv"); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestWriteFailureKeepsChange(t *testing.T) {
	dir := copyTree(t, filepath.Join(testdata, "basic"))
	root := filepath.Join(dir, "app.conf")
	incDir := filepath.Join(dir, "conf.d")
	c, err := Load(root, Options{NoWriteBack: true, Env: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("/app/include/listeners/listener/@port", "5"); err != nil {
		t.Fatal(err)
	}
	// The included file's directory vanishes: its write-back must fail.
	moved := incDir + ".away"
	if err := os.Rename(incDir, moved); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); !errors.Is(err, ErrWrite) {
		t.Fatalf("flush into a missing directory: %v", err)
	}
	if c.Pending() != 1 {
		t.Errorf("failed write not kept pending")
	}
	if err := os.Rename(moved, incDir); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(readFile(t, filepath.Join(incDir, "listeners.conf")), `port="5"`) {
		t.Error("retry did not write")
	}
}

func TestChangeErrors(t *testing.T) {
	c := loadBasic(t, envMap())
	cases := []struct {
		name string
		err  error
		kind error
	}{
		{"set missing", c.Set("/app/nothing", "x"), ErrNotFound},
		{"set inherited", c.Set("/app/a/ancestor-or-self::node()/@foo", "x"), ErrPath},
		{"set backingstore", c.Set("/app/a/@backingstore", "x"), ErrInvalid},
		{"add bad xml", c.Add("/app", "<a>"), ErrSyntax},
		{"add include", c.Add("/app", `<include file="x"/>`), ErrInvalid},
		{"add missing parent", c.Add("/app/nothing", "<a/>"), ErrNotFound},
		{"remove root", c.Remove("/app"), ErrInvalid},
		{"remove missing", c.Remove("/app/nothing"), ErrNotFound},
	}
	for _, tc := range cases {
		if !errors.Is(tc.err, tc.kind) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.kind)
		}
	}
	if c.Generation() != 0 {
		t.Error("failed changes bumped the generation")
	}
}

func TestWriteKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	dir := copyTree(t, filepath.Join(testdata, "basic"))
	root := filepath.Join(dir, "app.conf")
	const uid, gid = 65534, 65534
	if err := os.Chown(root, uid, gid); err != nil {
		t.Skip("chown:", err)
	}
	c, err := Load(root, Options{NoWriteBack: true, Env: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("/app/@workingdir", "/srv"); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != uid || st.Gid != gid {
		t.Errorf("owner %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
}
