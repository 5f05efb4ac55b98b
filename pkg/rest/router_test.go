package rest_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

func newServer(t *testing.T, rt *rest.Router) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, c *http.Client, method, url string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	return resp, string(b)
}

func echoCaptures(tag string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest.WriteJSON(w, http.StatusOK, map[string]any{"tag": tag, "captures": rest.Captures(r)})
	})
}

func TestRouting(t *testing.T) {
	rt := rest.New(rest.Options{})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rt.Handle("GET", "/", `(.*)`, echoCaptures("root")))
	must(rt.Handle("GET", "/a/", `b/(\d+)(x)?`, echoCaptures("ab")))
	must(rt.Handle("POST", "/a/", `b/(\d+)(x)?`, echoCaptures("ab-post")))
	must(rt.Handle("DELETE", "/a/c/", `d`, echoCaptures("acd")))
	must(rt.Handle("GET", "/a/x/", `y`, echoCaptures("axy")))
	srv := newServer(t, rt)
	c := srv.Client()

	cases := []struct {
		method, path string
		status       int
		tag          string
		caps         []string
		allow        string
	}{
		{"GET", "/anything", 200, "root", []string{"anything"}, ""},
		{"GET", "/a/b/12", 200, "ab", []string{"12", ""}, ""},
		{"GET", "/a/b/12x", 200, "ab", []string{"12", "x"}, ""},
		{"POST", "/a/b/7", 200, "ab-post", []string{"7", ""}, ""},
		// anchored: no partial match, and the longest base only
		{"GET", "/a/b/12y", 404, "", nil, ""},
		{"GET", "/a/zzz", 404, "", nil, ""},
		{"PUT", "/a/b/12", 405, "", nil, "OPTIONS, GET, HEAD, POST"},
		{"OPTIONS", "/a/b/12", 200, "", nil, "OPTIONS, GET, HEAD, POST"},
		{"DELETE", "/a/c/d", 200, "acd", []string{}, ""},
		{"GET", "/a/c/d", 405, "", nil, "OPTIONS, DELETE"},
		// the longest base is the only one consulted (libmtev's rule):
		// /a/x/ shadows /a/ and / below it
		{"GET", "/a/x/y", 200, "axy", []string{}, ""},
		{"GET", "/a/x/z", 404, "", nil, ""},
		{"HEAD", "/a/b/3", 200, "", nil, ""},
	}
	for _, tc := range cases {
		resp, body := do(t, c, tc.method, srv.URL+tc.path, nil)
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: status %d, want %d (%s)", tc.method, tc.path, resp.StatusCode, tc.status, body)
			continue
		}
		if got := resp.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
		if tc.tag == "" {
			if tc.status >= 400 {
				var e map[string]string
				if err := json.Unmarshal([]byte(body), &e); err != nil || e["error"] == "" {
					t.Errorf("%s %s: error body %q is not {\"error\":...}", tc.method, tc.path, body)
				}
			}
			continue
		}
		var got struct {
			Tag      string
			Captures []string
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s %s: %v: %s", tc.method, tc.path, err, body)
		}
		if got.Tag != tc.tag || strings.Join(got.Captures, "|") != strings.Join(tc.caps, "|") {
			t.Errorf("%s %s: got %+v, want %s %q", tc.method, tc.path, got, tc.tag, tc.caps)
		}
	}
}

func TestRouteErrors(t *testing.T) {
	rt := rest.New(rest.Options{})
	h := echoCaptures("x")
	for _, r := range []rest.Route{
		{Method: "", Base: "/", Expr: "x", Handler: h},
		{Method: "get", Base: "/", Expr: "x", Handler: h},
		{Method: "GET", Base: "a/", Expr: "x", Handler: h},
		{Method: "GET", Base: "/a", Expr: "x", Handler: h},
		{Method: "GET", Base: "/", Expr: "(", Handler: h},
		{Method: "GET", Base: "/", Expr: "x"},
		{Method: "GET", Base: "/", Expr: "x", Handler: h, Pool: "nope"},
	} {
		if err := rt.Route(r); !errors.Is(err, rest.ErrRoute) {
			t.Errorf("%+v: err %v, want ErrRoute", r, err)
		}
	}
	if err := rt.Handle("GET", "/", "x", h); err != nil {
		t.Fatal(err)
	}
	if err := rt.Handle("GET", "/", "x", h); !errors.Is(err, rest.ErrDuplicate) {
		t.Errorf("duplicate: %v", err)
	}
}
