package listener_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/mtev-supervise/mtev-supervise/internal/testport"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/internal/testcert"
	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/listener"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

func parse(t *testing.T, xml string) ([]*listener.Spec, error) {
	t.Helper()
	c, err := config.Parse("app.conf", []byte(xml), config.Options{NoWriteBack: true})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return listener.Parse(c)
}

func mustParse(t *testing.T, xml string) []*listener.Spec {
	t.Helper()
	specs, err := parse(t, xml)
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

func TestParseInheritance(t *testing.T) {
	specs := mustParse(t, `<app>
  <listeners backlog="32">
    <config><a>top</a><b>top</b></config>
    <group port="0" address="127.0.0.1">
      <config><b>group</b></config>
      <listener type="http_rest_api">
        <config><c>own</c></config>
      </listener>
      <listener type="control_dispatch" address="::1" backlog="7"/>
    </group>
    <listener type="http_rest_api" address="/tmp/x.sock"/>
  </listeners>
</app>`)
	if len(specs) != 3 {
		t.Fatalf("got %d specs", len(specs))
	}
	a, b, u := specs[0], specs[1], specs[2]
	if a.Type != "http_rest_api" || a.Address != "127.0.0.1" || a.Port != 0 || a.Backlog != 32 {
		t.Errorf("first: %+v", a)
	}
	if a.Config["a"] != "top" || a.Config["b"] != "group" || a.Config["c"] != "own" {
		t.Errorf("first config: %v", a.Config)
	}
	if b.Address != "::1" || b.Backlog != 7 || b.Config["c"] != "" {
		t.Errorf("second: %+v %v", b, b.Config)
	}
	if n, addr := b.Network(); n != "tcp6" || addr != "[::1]:0" {
		t.Errorf("second network %s %s", n, addr)
	}
	if n, addr := u.Network(); n != "unix" || addr != "/tmp/x.sock" {
		t.Errorf("unix network %s %s", n, addr)
	}
	if a.Pos.Line != 6 || a.Pos.File != "app.conf" {
		t.Errorf("pos %v", a.Pos)
	}
}

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	certs, err := testcert.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, body, want string }{
		{"unknown attr", `<listener type="http_rest_api" port="1" colour="red"/>`, `unknown attribute colour`},
		{"unknown element", `<listener type="http_rest_api" port="1"><extra/></listener>`, `unknown element <extra>`},
		{"no type", `<listener port="1"/>`, `no type`},
		{"unknown type", `<listener type="gopher" port="1"/>`, `unknown type "gopher"`},
		{"bad port", `<listener type="http_rest_api" port="70000"/>`, `port "70000" is not 1-65535`},
		{"no port", `<listener type="http_rest_api"/>`, `no port`},
		{"hostname", `<listener type="http_rest_api" address="example.com" port="1"/>`, `address "example.com"`},
		{"bad backlog", `<listener type="http_rest_api" port="1" backlog="x"/>`, `backlog "x"`},
		{"bad ssl", `<listener type="http_rest_api" port="1" ssl="perhaps"/>`, `ssl:`},
		{"ssl no cert", `<listener type="http_rest_api" port="1" ssl="on"/>`, `certificate_file and key_file are required`},
		{"ssl missing file", `<listener type="http_rest_api" port="1" ssl="on"><sslconfig><certificate_file>/nonexistent.pem</certificate_file><key_file>/nonexistent.key</key_file></sslconfig></listener>`, `no such file`},
		{"ssl mismatched key", fmt.Sprintf(`<listener type="http_rest_api" port="1" ssl="on"><sslconfig><certificate_file>%s</certificate_file><key_file>%s</key_file></sslconfig></listener>`, certs.ServerCert, certs.ClientKey), `private key does not match`},
		{"ssl unknown key", fmt.Sprintf(`<listener type="http_rest_api" port="1" ssl="on"><sslconfig><certificate_file>%s</certificate_file><key_file>%s</key_file><crl>x</crl></sslconfig></listener>`, certs.ServerCert, certs.ServerKey), `unknown key "crl"`},
		{"ssl bad layer", fmt.Sprintf(`<listener type="http_rest_api" port="1" ssl="on"><sslconfig><certificate_file>%s</certificate_file><key_file>%s</key_file><layer>tlsv9</layer></sslconfig></listener>`, certs.ServerCert, certs.ServerKey), `unknown option "tlsv9"`},
		{"ssl required without ca", fmt.Sprintf(`<listener type="http_rest_api" port="1" ssl="on"><sslconfig><certificate_file>%s</certificate_file><key_file>%s</key_file><client_cert>required</client_cert></sslconfig></listener>`, certs.ServerCert, certs.ServerKey), `needs a ca_chain`},
		{"duplicate", `<listener type="http_rest_api" port="1"/><listener type="http_rest_api" port="1"/>`, `also configured at app.conf:3`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, "<app>\n<listeners>\n"+tc.body+"\n</listeners>\n</app>")
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, listener.ErrConfig) {
				t.Errorf("not ErrConfig: %v", err)
			}
			if !strings.Contains(err.Error(), "app.conf:3: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks app.conf:3 or %q", err, tc.want)
			}
		})
	}
}

func TestLayer(t *testing.T) {
	dir := t.TempDir()
	certs, err := testcert.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	for layer, want := range map[string][2]uint16{
		"":                                       {tls.VersionTLS12, 0},
		"tlsv1:all,>=tlsv1.2,!all,!sslv3,!sslv2": {tls.VersionTLS12, 0},
		"tlsv1:all,>=tlsv1.3":                    {tls.VersionTLS13, 0},
		"=tlsv1.2":                               {tls.VersionTLS12, tls.VersionTLS12},
		"tlsv1:!tlsv1,!tlsv1.1":                  {tls.VersionTLS12, 0},
		"all,<=tlsv1.2,>=tlsv1.1":                {tls.VersionTLS11, tls.VersionTLS12},
	} {
		tl, err := listener.NewTLS(map[string]string{"certificate_file": certs.ServerCert, "key_file": certs.ServerKey, "layer": layer})
		if err != nil {
			t.Errorf("%q: %v", layer, err)
			continue
		}
		c := tl.Current()
		if c.MinVersion != want[0] || c.MaxVersion != want[1] {
			t.Errorf("%q: min %x max %x, want %x %x", layer, c.MinVersion, c.MaxVersion, want[0], want[1])
		}
	}
}

// start runs specs with a router answering GET /hello and returns the set.
func start(t *testing.T, specs []*listener.Spec) (*listener.Set, *rest.Router) {
	t.Helper()
	rt := rest.New(rest.Options{})
	if err := rt.HandleFunc("GET", "/", "hello", func(w http.ResponseWriter, r *http.Request) {
		cn := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "hello %s %s", r.Proto, cn)
	}); err != nil {
		t.Fatal(err)
	}
	if err := rt.MountCapabilities(); err != nil {
		t.Fatal(err)
	}
	s := listener.NewSet(listener.Options{Router: rt})
	if err := s.Start(specs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s, rt
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestPlainAndDispatch(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	specs := mustParse(t, fmt.Sprintf(`<app><listeners address="127.0.0.1" port="0">
  <listener type="http_rest_api"/>
  <listener type="control_dispatch" address="::1"/>
  <listener type="http_rest_api" address="%s"/>
</listeners></app>`, sock))
	s, _ := start(t, specs)
	ls := s.Listening()
	if len(ls) != 3 {
		t.Fatalf("listening %d", len(ls))
	}
	for _, l := range ls[:2] {
		code, body := get(t, http.DefaultClient, "http://"+l.Addr.String()+"/hello")
		if code != 200 || body != "hello HTTP/1.1 " {
			t.Errorf("%s: %d %q", l.Spec.Key(), code, body)
		}
	}
	uc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	if code, body := get(t, uc, "http://unix/hello"); code != 200 || body != "hello HTTP/1.1 " {
		t.Errorf("unix: %d %q", code, body)
	}

	disp := ls[1].Addr.String()
	// CAPA answers the capabilities document raw, then closes.
	c, err := net.Dial("tcp", disp)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("CAPA"))
	doc, err := io.ReadAll(c)
	c.Close()
	if err != nil || !strings.Contains(string(doc), "<mtev_capabilities>") || !strings.Contains(string(doc), `control_dispatch="control_dispatch"`) {
		t.Errorf("CAPA: %v %s", err, doc)
	}
	// junk is closed without an answer
	c, _ = net.Dial("tcp", disp)
	c.Write([]byte("JUNK and more"))
	junk, _ := io.ReadAll(c)
	c.Close()
	if len(junk) != 0 {
		t.Errorf("junk answered %q", junk)
	}
	// HTTP/1.0 by hand through the sniffer
	c, _ = net.Dial("tcp", disp)
	fmt.Fprintf(c, "GET /hello HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	c.Close()
	if resp.StatusCode != 200 || string(b) != "hello HTTP/1.0 " {
		t.Errorf("1.0: %d %q", resp.StatusCode, b)
	}
	// /capa.json lists the listeners
	_, capa := get(t, http.DefaultClient, "http://"+disp+"/capa.json")
	if !strings.Contains(capa, `"control_dispatch":"http_rest_api"`) || !strings.Contains(capa, `"name":"capabilities_transit"`) {
		t.Errorf("capa.json: %s", capa)
	}
}

func tlsSpecs(t *testing.T, certs *testcert.Set, typ, clientCert string) []*listener.Spec {
	return mustParse(t, fmt.Sprintf(`<app><listeners>
  <sslconfig><certificate_file>%s</certificate_file><key_file>%s</key_file><ca_chain>%s</ca_chain>
    <client_cert>%s</client_cert></sslconfig>
  <listener type="%s" address="127.0.0.1" port="0" ssl="on"/>
</listeners></app>`, certs.ServerCert, certs.ServerKey, certs.CA, clientCert, typ))
}

func client(certs *testcert.Set, withCert bool, h2 bool) *http.Client {
	cfg := &tls.Config{RootCAs: certs.CAPool}
	if withCert {
		cfg.Certificates = []tls.Certificate{certs.Client}
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr}
}

func TestTLS(t *testing.T) {
	certs, err := testcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"http_rest_api", "control_dispatch"} {
		t.Run(typ, func(t *testing.T) {
			s, _ := start(t, tlsSpecs(t, certs, typ, "optional"))
			url := "https://" + s.Listening()[0].Addr.String() + "/hello"
			for _, tc := range []struct {
				cert, h2 bool
				want     string
			}{
				{false, false, "hello HTTP/1.1 "},
				{true, false, "hello HTTP/1.1 client"},
				{false, true, "hello HTTP/2.0 "},
				{true, true, "hello HTTP/2.0 client"},
			} {
				code, body := get(t, client(certs, tc.cert, tc.h2), url)
				if code != 200 || body != tc.want {
					t.Errorf("cert=%v h2=%v: %d %q, want %q", tc.cert, tc.h2, code, body, tc.want)
				}
			}
		})
	}
	t.Run("required", func(t *testing.T) {
		s, _ := start(t, tlsSpecs(t, certs, "http_rest_api", "required"))
		url := "https://" + s.Listening()[0].Addr.String() + "/hello"
		if _, err := client(certs, false, false).Get(url); err == nil {
			t.Error("no client certificate accepted")
		}
		if code, body := get(t, client(certs, true, true), url); code != 200 || body != "hello HTTP/2.0 client" {
			t.Errorf("with cert: %d %q", code, body)
		}
	})
	t.Run("sniffed without alpn keeps cn", func(t *testing.T) {
		s, _ := start(t, tlsSpecs(t, certs, "control_dispatch", "optional"))
		c, err := tls.Dial("tcp", s.Listening()[0].Addr.String(), &tls.Config{RootCAs: certs.CAPool, Certificates: []tls.Certificate{certs.Client}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "hello HTTP/1.1 client" {
			t.Errorf("got %q", b)
		}
	})
}

func TestReloadCertificate(t *testing.T) {
	certs, err := testcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	specs := tlsSpecs(t, certs, "http_rest_api", "optional")
	specs[0].Port = freePort(t)
	s, _ := start(t, specs)
	addr := s.Listening()[0].Addr.String()
	serial := func(c *tls.Conn) int64 { return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64() }

	// an open connection survives the reload
	old, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: certs.CAPool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if serial(old) != 2 {
		t.Fatalf("first serial %d", serial(old))
	}
	// a new certificate at the same paths
	if _, _, _, err := certs.Issue("server", "localhost", 9, true); err != nil {
		t.Fatal(err)
	}
	again := tlsSpecs(t, certs, "http_rest_api", "optional")
	again[0].Port = specs[0].Port
	if err := s.Reload(again); err != nil {
		t.Fatal(err)
	}
	nc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: certs.CAPool})
	if err != nil {
		t.Fatal(err)
	}
	if serial(nc) != 9 {
		t.Errorf("after reload serial %d, want 9", serial(nc))
	}
	nc.Close()
	fmt.Fprintf(old, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(old), nil)
	if err != nil {
		t.Fatalf("old connection after reload: %v", err)
	}
	resp.Body.Close()

	// a bad certificate is refused at parse time; the running one stays
	os.WriteFile(certs.ServerCert, []byte("not a certificate"), 0o600)
	_, err = parse(t, fmt.Sprintf(`<app><listeners><listener type="http_rest_api" address="127.0.0.1" port="%d" ssl="on"><sslconfig><certificate_file>%s</certificate_file><key_file>%s</key_file></sslconfig></listener></listeners></app>`, specs[0].Port, certs.ServerCert, certs.ServerKey))
	if err == nil || !strings.Contains(err.Error(), "app.conf:1") {
		t.Fatalf("bad certificate: %v", err)
	}
	nc, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: certs.CAPool})
	if err != nil {
		t.Fatal(err)
	}
	if serial(nc) != 9 {
		t.Errorf("after refused reload serial %d, want 9", serial(nc))
	}
	nc.Close()
}

func freePort(t *testing.T) int {
	return testport.One(t)
}

func TestReloadAddRemove(t *testing.T) {
	p1, p2 := freePort(t), freePort(t)
	conf := func(ports ...int) string {
		var b strings.Builder
		b.WriteString(`<app><listeners address="127.0.0.1">`)
		for _, p := range ports {
			fmt.Fprintf(&b, `<listener type="http_rest_api" port="%d"/>`, p)
		}
		b.WriteString(`</listeners></app>`)
		return b.String()
	}
	s, _ := start(t, mustParse(t, conf(p1)))
	if err := s.Reload(mustParse(t, conf(p1, p2))); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{p1, p2} {
		if code, _ := get(t, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/hello", p)); code != 200 {
			t.Errorf("port %d: %d", p, code)
		}
	}
	if err := s.Reload(mustParse(t, conf(p2))); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/hello", p1)); err == nil {
		t.Errorf("port %d still open after removal", p1)
	}
	if len(s.Listening()) != 1 {
		t.Errorf("listening %d", len(s.Listening()))
	}
}

func TestStartAllOrNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := freePort(t)
	specs := mustParse(t, fmt.Sprintf(`<app><listeners address="127.0.0.1">
<listener type="http_rest_api" port="%d"/>
<listener type="http_rest_api" port="%d"/>
</listeners></app>`, free, busy.Addr().(*net.TCPAddr).Port))
	s := listener.NewSet(listener.Options{Router: rest.New(rest.Options{})})
	err = s.Start(specs)
	if !errors.Is(err, listener.ErrListen) || !strings.Contains(err.Error(), "app.conf:3") {
		t.Fatalf("err %v", err)
	}
	if len(s.Listening()) != 0 {
		t.Error("a listener stayed open")
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", free))
	if err != nil {
		t.Errorf("first port not released: %v", err)
	} else {
		ln.Close()
	}
}

func TestUnixSocketPathNotASocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	os.WriteFile(path, []byte("keep me"), 0o600)
	s := listener.NewSet(listener.Options{Router: rest.New(rest.Options{})})
	err := s.Start(mustParse(t, fmt.Sprintf(`<app><listeners><listener type="http_rest_api" address="%s"/></listeners></app>`, path)))
	if !errors.Is(err, listener.ErrListen) || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("err %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Error("regular file was touched")
	}
}
