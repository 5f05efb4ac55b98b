package runtime

import (
	"crypto/tls"
	"fmt"
	"github.com/mtev-supervise/mtev-supervise/internal/testport"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/internal/testcert"
	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

// TestListenersFromConfig starts <listeners> and <rest> from a file,
// serves, reloads a new ACL and certificate, refuses a bad certificate
// with file:line keeping the old one, and drains on stop.
func TestListenersFromConfig(t *testing.T) {
	dir := t.TempDir()
	certs, err := testcert.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "app.conf")
	p1, p2 := freePort(t), freePort(t)
	write := func(acl, cert string) {
		body := fmt.Sprintf(`<app>
  <listeners address="127.0.0.1">
    <listener type="http_rest_api" port="%d"/>
    <listener type="http_rest_api" port="%d" ssl="on">
      <sslconfig><certificate_file>%s</certificate_file><key_file>%s</key_file></sslconfig>
    </listener>
  </listeners>
  <rest deadline="10s">%s</rest>
</app>
`, p1, p2, cert, certs.ServerKey, acl)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`<acl type="allow"/>`, certs.ServerCert)
	app := App{ConfigFile: conf}
	rt := &Runtime{Logs: log.New(log.WithStderr(io.Discard))}
	if err := loadConfig(&app, rt); err != nil {
		t.Fatal(err)
	}
	defer rt.Config.Close()
	ev, err := eventer.New(eventer.Options{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	ev.Start()
	defer ev.Stop()
	rt.Eventer = ev
	if err := rt.initHTTP(); err != nil {
		t.Fatal(err)
	}
	rt.Router.HandleFunc("GET", "/", "hello", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") })
	if err := rt.startListeners(); err != nil {
		t.Fatal(err)
	}
	ls := rt.Listeners.Listening()
	if len(ls) != 2 {
		t.Fatalf("listening %d", len(ls))
	}
	plain := "http://" + ls[0].Addr.String()
	secure := ls[1].Addr.String()
	status := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	serial := func() int64 {
		c, err := tls.Dial("tcp", secure, &tls.Config{RootCAs: certs.CAPool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := status(plain + "/hello"); s != 200 {
		t.Fatalf("hello: %d", s)
	}
	if s := status(plain + "/capa.json"); s != 200 {
		t.Fatalf("capa: %d", s)
	}

	// reload: a new ACL and a new certificate file
	newCert, _, _, err := certs.Issue("server2", "localhost", 77, true)
	if err != nil {
		t.Fatal(err)
	}
	// the new certificate's key is server2-key.pem: write a config using it
	body := fmt.Sprintf(`<app>
  <listeners address="127.0.0.1">
    <listener type="http_rest_api" port="%d"/>
    <listener type="http_rest_api" port="%d" ssl="on">
      <sslconfig><certificate_file>%s</certificate_file><key_file>%s</key_file></sslconfig>
    </listener>
  </listeners>
  <rest deadline="10s"><acl type="deny"/></rest>
</app>
`, p1, p2, newCert, strings.TrimSuffix(newCert, ".pem")+"-key.pem")
	os.WriteFile(conf, []byte(body), 0o600)
	if _, err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := status(plain + "/hello"); s != 403 {
		t.Errorf("after reload with a deny acl: %d", s)
	}
	if got := serial(); got != 77 {
		t.Errorf("certificate serial after reload %d, want 77", got)
	}
	if rt.Listeners.Listening()[1].Addr.String() != secure {
		t.Error("the TLS listener was reopened instead of keeping its socket")
	}

	// a certificate that does not load: refused with file:line, old kept
	write(`<acl type="allow"/>`, filepath.Join(dir, "missing.pem"))
	_, err = rt.Reload()
	if err == nil || !strings.Contains(err.Error(), "app.conf:4") {
		t.Fatalf("bad certificate reload: %v", err)
	}
	if got := serial(); got != 77 {
		t.Errorf("certificate serial after refused reload %d", got)
	}

	rt.stopListeners()
	if _, err := http.Get(plain + "/hello"); err == nil {
		t.Error("still serving after stop")
	}
}

func freePort(t *testing.T) int {
	return testport.One(t)
}
