package config

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const crashChildEnv = "CONFIG_TEST_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	os.Exit(m.Run())
}

// payloadSize makes each write-back long enough to be interrupted.
const payloadSize = 256 << 10

// crashChild rewrites the file at path forever, announcing each completed
// write-back on stdout, until it is killed.
func crashChild(path string) {
	c, err := Load(path, Options{NoWriteBack: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	for i := 1; ; i++ {
		if err := c.Set("/app/marker", strconv.Itoa(i)); err != nil {
			os.Exit(4)
		}
		if err := c.Set("/app/payload", strings.Repeat(strconv.Itoa(i%10), payloadSize)); err != nil {
			os.Exit(5)
		}
		if err := c.Flush(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(6)
		}
		fmt.Println(i)
	}
}

func TestSIGKILLDuringWriteBack(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for round := range 6 {
		dir := t.TempDir()
		path := writeFile(t, dir, "app.conf", "<app>\n  <marker>0</marker>\n  <payload>"+strings.Repeat("0", payloadSize)+"</payload>\n</app>\n")
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a random number of completed write-backs: the kill
		// lands somewhere inside the next one.
		want := 1 + rand.IntN(15)
		sc := bufio.NewScanner(out)
		for n := 0; n < want && sc.Scan(); n++ {
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()

		c, err := Load(path, Options{NoWriteBack: true})
		if err != nil {
			t.Fatalf("round %d: file broken after SIGKILL: %v", round, err)
		}
		marker, err := c.Int("/app/marker", -1)
		if err != nil || marker < int64(want) {
			t.Fatalf("round %d: marker %d (%v), want >= %d", round, marker, err, want)
		}
		payload, _ := c.String("/app/payload", "")
		if len(payload) != payloadSize || strings.Trim(payload, strconv.Itoa(int(marker%10))) != "" {
			t.Fatalf("round %d: payload of %d bytes does not belong to write %d", round, len(payload), marker)
		}
	}
}

func TestReload(t *testing.T) {
	dir := copyTree(t, filepath.Join(testdata, "basic"))
	root := filepath.Join(dir, "app.conf")
	inc := filepath.Join(dir, "conf.d", "listeners.conf")
	c, err := Load(root, Options{NoWriteBack: true, Env: envMap(), Sections: []Section{{
		Path: "watchdog", Element: Element{Open: true, Attrs: []Attr{{Name: "timeout", Type: TypeDuration}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var told [][]string
	cancel := c.Subscribe(func(changed []string) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, changed)
	})
	defer cancel()

	// Unchanged files: nothing changed.
	changed, err := c.Reload()
	if err != nil || len(changed) != 0 {
		t.Fatalf("reload of unchanged files: %v %v", changed, err)
	}

	gen := c.Generation()
	edit := func(p, old, new string) {
		t.Helper()
		s := readFile(t, p)
		if !strings.Contains(s, old) {
			t.Fatalf("%s lacks %q", p, old)
		}
		writeFile(t, filepath.Dir(p), filepath.Base(p), strings.Replace(s, old, new, 1))
	}
	edit(root, "<restarts>3</restarts>", "<restarts>4</restarts>")
	edit(inc, `port="32322"`, `port="1"`)
	edit(root, "<port>", "<new/>\n  <port>")
	edit(root, "  <prod require_env=\"APP_ENV=prod\"><level>1</level></prod>\n", "")
	changed, err = c.Reload()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/app/include/listeners/listener[2]",
		"/app/new",
		"/app/prod",
		"/app/watchdog/restarts",
	}
	if !slices.Equal(changed, want) {
		t.Errorf("changed %v, want %v", changed, want)
	}
	if v, _ := c.Int("/app/watchdog/restarts", 0); v != 4 {
		t.Errorf("new value not visible: %d", v)
	}
	if c.Generation() <= gen {
		t.Error("generation not bumped")
	}
	mu.Lock()
	if len(told) != 1 || !slices.Equal(told[0], want) {
		t.Errorf("subscriber told %v", told)
	}
	mu.Unlock()

	// A bad file is rejected with file:line and the running config stays.
	cases := []struct {
		name, file, old, new, want string
		kind                       error
	}{
		{"syntax", inc, "</listeners>", "</listener>", "listeners.conf:9:", ErrSyntax},
		{"invalid", root, `timeout="5s"`, `timeout="soon"`, "app.conf:4:", ErrInvalid},
		{"missing include", root, "conf.d/listeners.conf", "conf.d/gone.conf", "app.conf:11:", ErrInclude},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := readFile(t, tc.file)
			edit(tc.file, tc.old, tc.new)
			defer writeFile(t, filepath.Dir(tc.file), filepath.Base(tc.file), before)
			_, err := c.Reload()
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %v at %s", err, tc.kind, tc.want)
			}
			if v, _ := c.Int("/app/watchdog/restarts", 0); v != 4 {
				t.Errorf("running config replaced: %d", v)
			}
		})
	}
	cancel()
	edit(root, "<restarts>4</restarts>", "<restarts>5</restarts>")
	if _, err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(told) != 1 {
		t.Error("cancelled subscriber called")
	}
	mu.Unlock()
}

func TestConcurrentReadWrite(t *testing.T) {
	root := shatteredTree(t, 50)
	c, err := Load(root, Options{Coalesce: 1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var failures sync.Map
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				id := fmt.Sprintf("c%d", 1+(i+r)%50)
				if _, err := c.String("/app/checks/check[@id='"+id+"']/target", ""); err != nil {
					failures.Store("read", err)
				}
				if _, err := c.Duration("/app/checks/check[@id='"+id+"']/@period", 0); err != nil {
					failures.Store("duration", err)
				}
				c.Files()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 100 {
			if err := c.Set(fmt.Sprintf("/app/checks/check[@id='c%d']/@period", 1+i%50), fmt.Sprintf("%ds", i)); err != nil {
				failures.Store("write", err)
			}
			if i%25 == 0 {
				if _, err := c.Reload(); err != nil {
					failures.Store("reload", err)
				}
			}
		}
	}()
	wg.Wait()
	failures.Range(func(k, v any) bool { t.Errorf("%v: %v", k, v); return true })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Pending() != 0 {
		t.Error("Close left changes pending")
	}
	if _, err := Load(root, Options{NoWriteBack: true}); err != nil {
		t.Fatalf("files broken after concurrent use: %v", err)
	}
}
