package hook

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Mounter is where Mount attaches /mtev/hooks.json: a router taking
// libmtev's method, base and anchored expression (pkg/rest's Router has
// this method).
type Mounter interface {
	Handle(method, base, expr string, h http.Handler) error
}

// Mount serves GET /mtev/hooks.json on m.
func Mount(m Mounter) error {
	if err := m.Handle(http.MethodGet, "/mtev/", `hooks\.json`, Handler()); err != nil {
		return fmt.Errorf("hook: mount /mtev/hooks.json: %w", err)
	}
	return nil
}

// Handler returns the handler of /mtev/hooks.json: a JSON array of every
// hook point (Points), each {"name","doc","attached"} with the attached
// functions in the order they run.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(Points())
	})
}

// Show writes the `show hooks` console listing to w: one line per hook
// point, then one indented line per attached function in the order they
// run. With arguments, only points whose name starts with one of them are
// listed.
func Show(w io.Writer, args []string) error {
	n := 0
	for _, p := range Points() {
		if len(args) > 0 && !hasAnyPrefix(p.Name, args) {
			continue
		}
		n++
		if _, err := fmt.Fprintf(w, "%s (%d attached)", p.Name, len(p.Attached)); err != nil {
			return err
		}
		if p.Doc != "" {
			fmt.Fprintf(w, ": %s", p.Doc)
		}
		fmt.Fprintln(w)
		for i, a := range p.Attached {
			fmt.Fprintf(w, "  %d. %s\n", i+1, a)
		}
	}
	if n == 0 {
		_, err := fmt.Fprintln(w, "no hook points")
		return err
	}
	return nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
