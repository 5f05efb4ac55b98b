package log

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
)

// The hook is process-wide: the functions attached here act only on the
// facility this test logs to.
func TestLineHookDropsOnAbort(t *testing.T) {
	g, ring := newRingGraph(t, Spec{Name: "hooktest", Outlets: []string{"ring"}})
	f := g.Facility("hooktest")
	var mu sync.Mutex
	var seen []string
	LineHook.Register("redact", func(r Record) hook.Result {
		if r.Facility != "hooktest" {
			return hook.Continue
		}
		var m map[string]any
		if err := json.Unmarshal(r.JSON, &m); err != nil {
			t.Errorf("hook got a line that is not JSON: %q", r.JSON)
		}
		if strings.Contains(m["message"].(string), "secret") {
			return hook.Abort
		}
		return hook.Continue
	})
	if err := hook.AttachJSON("mtev_log_line", "by-name", func(b []byte) hook.Result {
		var v struct {
			Facility string
			Line     struct{ Message string }
		}
		if json.Unmarshal(b, &v) == nil && v.Facility == "hooktest" {
			mu.Lock()
			seen = append(seen, v.Line.Message)
			mu.Unlock()
		}
		return hook.Continue
	}); err != nil {
		t.Fatal(err)
	}
	f.Log().Msg("one")
	f.Log().Msg("a secret")
	f.Log().Msg("two")
	if got := ringMessages(ring); !slices.Equal(got, []string{"hooktest:one", "hooktest:two"}) {
		t.Fatalf("ring holds %v, want the secret line dropped", got)
	}
	mu.Lock()
	defer mu.Unlock()
	// The function attached by name was attached last, so it runs first
	// and sees every line, the dropped one too.
	if !slices.Equal(seen, []string{"one", "a secret", "two"}) {
		t.Fatalf("by-name function saw %v", seen)
	}
}
