package config

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
)

// The hooks are process-wide and cannot be detached: the functions
// attached here act only on files of this test's directory.
func TestLoadAndReloadHooks(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.xml", "<app><a>1</a></app>")
	refused := writeFile(t, dir, "refused.xml", "<app><a>1</a></app>")
	var mu sync.Mutex
	var loads, reloads []string
	LoadHook.Register("test", func(c *Config) hook.Result {
		if filepath.Dir(c.Path()) != dir {
			return hook.Continue
		}
		mu.Lock()
		loads = append(loads, filepath.Base(c.Path()))
		mu.Unlock()
		if c.Path() == refused {
			return hook.Abort
		}
		return hook.Continue
	})
	var remote []string
	if err := hook.AttachJSON("mtev_conf_reload", "test-json", func(b []byte) hook.Result {
		var v struct {
			Path    string
			Changed []string
		}
		if json.Unmarshal(b, &v) == nil && filepath.Dir(v.Path) == dir {
			mu.Lock()
			remote = append(remote, strings.Join(v.Changed, ","))
			mu.Unlock()
		}
		return hook.Continue
	}); err != nil {
		t.Fatal(err)
	}
	ReloadHook.Register("test", func(r Reloaded) hook.Result {
		if filepath.Dir(r.Config.Path()) == dir {
			mu.Lock()
			reloads = append(reloads, strings.Join(r.Changed, ","))
			mu.Unlock()
		}
		return hook.Continue
	})

	c, err := Load(good, Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = Load(refused, Options{NoWriteBack: true})
	if !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "refused.xml") {
		t.Fatalf("a load the hook aborted returned %v", err)
	}
	writeFile(t, dir, "good.xml", "<app><a>2</a></app>")
	if _, err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(loads, []string{"good.xml", "refused.xml"}) {
		t.Errorf("load hook saw %v", loads)
	}
	if !slices.Equal(reloads, []string{"/app/a"}) || !slices.Equal(remote, reloads) {
		t.Errorf("reload hook saw %v, by name %v", reloads, remote)
	}
}
