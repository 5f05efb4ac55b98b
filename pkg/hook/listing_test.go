package hook

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// mux is the smallest Mounter: libmtev's base plus anchored expression
// over http.ServeMux.
type mux struct{ *http.ServeMux }

func (m mux) Handle(method, base, expr string, h http.Handler) error {
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return err
	}
	m.ServeMux.Handle(base, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method || !re.MatchString(strings.TrimPrefix(r.URL.Path, base)) {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	return nil
}

func TestHooksJSONOverHTTP(t *testing.T) {
	p := New[int]("test_http_listed", "listed over HTTP")
	p.Register("older", func(int) Result { return Continue })
	p.Register("newer", func(int) Result { return Continue })
	m := mux{http.NewServeMux()}
	if err := Mount(m); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/mtev/hooks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got []Info
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	for _, in := range got {
		if in.Name == "test_http_listed" {
			if fmt.Sprint(in.Attached) != "[newer older]" || in.Doc != "listed over HTTP" {
				t.Fatalf("listed %+v", in)
			}
			resp2, err := http.Get(srv.URL + "/mtev/hooks.jsonx")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp2.Body)
			resp2.Body.Close()
			if resp2.StatusCode != 404 {
				t.Fatalf("/mtev/hooks.jsonx answered %d", resp2.StatusCode)
			}
			return
		}
	}
	t.Fatalf("point not listed in %+v", got)
}

func TestShow(t *testing.T) {
	p := New[int]("test_show_point", "shown on the console")
	p.Register("audit", func(int) Result { return Continue })
	var b strings.Builder
	if err := Show(&b, []string{"test_show_"}); err != nil {
		t.Fatal(err)
	}
	want := "test_show_point (1 attached): shown on the console\n  1. audit\n"
	if b.String() != want {
		t.Fatalf("show hooks printed %q, want %q", b.String(), want)
	}
	b.Reset()
	Show(&b, []string{"no_such_prefix"})
	if b.String() != "no hook points\n" {
		t.Fatalf("empty listing %q", b.String())
	}
}
