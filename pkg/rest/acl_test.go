package rest_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/internal/testcert"
	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

func parseACL(t *testing.T, body string) (*rest.ACL, error) {
	t.Helper()
	c, err := config.Parse("app.conf", []byte("<app>\n<rest>\n"+body+"\n</rest>\n</app>"), config.Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	n, ok, err := c.Find("/app/rest")
	if err != nil || !ok {
		t.Fatal("no rest", err)
	}
	return rest.ParseACL(n)
}

// aclServer serves GET /(.*) on TLS with optional client certificates;
// the route's auth sets the user from X-User (an auth module would) then
// applies the ACL. The listener config carries zone=green.
func aclServer(t *testing.T, certs *testcert.Set, acl *rest.ACL) *httptest.Server {
	t.Helper()
	rt := rest.New(rest.Options{})
	rt.SetACL(acl)
	err := rt.Route(rest.Route{Method: "GET", Base: "/", Expr: "(.*)",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }),
		Auth: func(r *http.Request) bool {
			if u := r.Header.Get("X-User"); u != "" {
				rest.SetUser(r, u, "header")
			}
			return acl.Allows(r)
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(rt)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{certs.Server}, ClientCAs: certs.CAPool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.Config.BaseContext = func(net.Listener) context.Context {
		return rest.WithListenerConfig(context.Background(), map[string]string{"zone": "green"})
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestACLMatchers(t *testing.T) {
	certs, err := testcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.CAPool}}}
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.CAPool, Certificates: []tls.Certificate{certs.Client}}}}
	type req struct {
		c      *http.Client
		path   string
		user   string
		status int
	}
	cases := []struct {
		name string
		acl  string
		reqs []req
	}{
		{"no acl allows everything", ``, []req{{plain, "/x", "", 200}}},
		{"url", `<acl><rule type="allow" url="^/open/"/></acl>`, []req{{plain, "/open/a", "", 200}, {plain, "/closed/a", "", 403}}},
		{"user", `<acl><rule type="allow" user="^alice$"/></acl>`, []req{{plain, "/", "alice", 200}, {plain, "/", "bob", 403}, {plain, "/", "", 403}}},
		{"auth", `<acl><rule type="allow" auth="^header$"/></acl>`, []req{{plain, "/", "anyone", 200}, {plain, "/", "", 403}}},
		{"cn", `<acl><rule type="allow" cn="^client$"/></acl>`, []req{{withCert, "/", "", 200}, {plain, "/", "", 403}}},
		{"ip cidr", `<acl><rule type="allow" ip="127.0.0.0/8"/></acl>`, []req{{plain, "/", "", 200}}},
		{"ip outside", `<acl><rule type="allow" ip="10.0.0.0/8,::1"/></acl>`, []req{{plain, "/", "", 403}}},
		{"listener key", `<acl><rule type="allow" listener_zone="^green$"/></acl>`, []req{{plain, "/", "", 200}}},
		{"listener key mismatch", `<acl><rule type="allow" listener_zone="^red$"/></acl>`, []req{{plain, "/", "", 403}}},
		{"listener key absent", `<acl><rule type="allow" listener_nokey=".*"/></acl>`, []req{{plain, "/", "", 403}}},
		{"rules in order", `<acl><rule type="deny" url="^/a/secret"/><rule type="allow" url="^/a/"/></acl>`,
			[]req{{plain, "/a/x", "", 200}, {plain, "/a/secret", "", 403}}},
		{"acl type is the default", `<acl type="allow"><rule type="deny" user="^mallory$"/></acl>`,
			[]req{{plain, "/", "", 200}, {plain, "/", "mallory", 403}}},
		{"acl default deny", `<acl><rule type="allow" user="^alice$"/></acl>`, []req{{plain, "/", "carol", 403}}},
		{"first matching acl decides", `<acl url="^/admin/" type="deny"><rule type="allow" cn="^client$"/></acl><acl type="allow"/>`,
			[]req{{plain, "/admin/x", "", 403}, {withCert, "/admin/x", "", 200}, {plain, "/other", "", 200}}},
		{"no acl matches: deny", `<acl url="^/only/" type="allow"/>`, []req{{plain, "/elsewhere", "", 403}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			acl, err := parseACL(t, tc.acl)
			if err != nil {
				t.Fatal(err)
			}
			srv := aclServer(t, certs, acl)
			for _, r := range tc.reqs {
				hr, _ := http.NewRequest("GET", srv.URL+r.path, nil)
				if r.user != "" {
					hr.Header.Set("X-User", r.user)
				}
				resp, err := r.c.Do(hr)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != r.status {
					t.Errorf("%s user=%q: %d, want %d", r.path, r.user, resp.StatusCode, r.status)
				}
			}
		})
	}
}

func TestACLDefaultAuthIsTheRouterACL(t *testing.T) {
	rt := rest.New(rest.Options{})
	rt.HandleFunc("GET", "/", "(.*)", func(w http.ResponseWriter, r *http.Request) {})
	acl, err := parseACL(t, `<acl><rule type="allow" url="^/yes"/></acl>`)
	if err != nil {
		t.Fatal(err)
	}
	rt.SetACL(acl)
	srv := newServer(t, rt)
	for path, want := range map[string]int{"/yes": 200, "/no": 403} {
		resp, body := do(t, srv.Client(), "GET", srv.URL+path, nil)
		if resp.StatusCode != want {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
		if want == 403 && !strings.Contains(body, `"error":"denied"`) {
			t.Errorf("403 body %q", body)
		}
	}
}

func TestACLParseErrors(t *testing.T) {
	for body, want := range map[string]string{
		`<acl colour="red"/>`:                              `unknown attribute "colour"`,
		`<acl type="maybe"/>`:                              `type "maybe"`,
		`<acl url="("/>`:                                   `url: error parsing regexp`,
		`<acl ip="300.1.1.1"/>`:                            `ip:`,
		`<acl><rule type="allow" ip="10.0.0.0/99"/></acl>`: `ip:`,
		`<acl><other/></acl>`:                              `<other> inside <acl>`,
		`<acl listener_x="["/>`:                            `listener_x:`,
	} {
		_, err := parseACL(t, body)
		if !errors.Is(err, rest.ErrACL) || !strings.Contains(err.Error(), "app.conf:3: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v (want app.conf:3 and %q)", body, err, want)
		}
	}
}

func FuzzParseACL(f *testing.F) {
	for _, s := range []string{`<acl><rule type="allow" url="^/a"/></acl>`, `<acl type="allow" ip="10.0.0.0/8,::1" cn="x" listener_k="v"/>`, `<acl user="(" />`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		c, err := config.Parse("f.conf", []byte("<app><rest>"+body+"</rest></app>"), config.Options{NoWriteBack: true})
		if err != nil {
			return
		}
		n, ok, _ := c.Find("/app/rest")
		if !ok {
			return
		}
		acl, err := rest.ParseACL(n)
		if err != nil {
			if !errors.Is(err, rest.ErrACL) && !strings.Contains(err.Error(), "f.conf") {
				t.Fatalf("error without place: %v", err)
			}
			return
		}
		r := httptest.NewRequest("GET", "/a/b", nil)
		acl.Allows(r)
	})
}

func FuzzRoute(f *testing.F) {
	f.Add("GET", "/", `(.*)`, "/x")
	f.Add("POST", "/a/", `b/(\d+)`, "/a/b/1")
	f.Add("WS", "/mtev/", `console`, "/mtev/console")
	f.Fuzz(func(t *testing.T, method, base, expr, path string) {
		rt := rest.New(rest.Options{})
		err := rt.Handle(method, base, expr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		if err != nil {
			if !errors.Is(err, rest.ErrRoute) {
				t.Fatalf("error not ErrRoute: %v", err)
			}
			return
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = path
		rt.ServeHTTP(httptest.NewRecorder(), r)
	})
}
