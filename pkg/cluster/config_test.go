package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

func loadConf(t *testing.T, xml string) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(path, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, config.Options{Coalesce: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

const goodConf = `<app>
  <clusters my_id="183BF75C-507A-48DB-8FB4-5FDCF77E1089">
    <cluster name="ponies" port="43191" key="shame_on_me" period="1000" timeout="5000" maturity="10000" seq="1">
      <node id="553dfa34-a9f3-495a-b286-ee3d5ad9fa1b" cn="dancing" address="127.0.0.1" port="43192"/>
      <node id="183bf75c-507a-48db-8fb4-5fdcf77e1089" cn="sparkling" address="127.0.0.1" port="43191"/>
    </cluster>
    <cluster name="other" port="43200" seq="7">
      <node id="183bf75c-507a-48db-8fb4-5fdcf77e1089" cn="sparkling" address="::1" port="43200"/>
    </cluster>
  </clusters>
</app>
`

func TestReadConfig(t *testing.T) {
	c, _ := loadConf(t, goodConf)
	s, err := ReadConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	if s.MyID != "183bf75c-507a-48db-8fb4-5fdcf77e1089" || len(s.Clusters) != 2 {
		t.Fatalf("%+v", s)
	}
	p := s.Clusters[0]
	if p.Name != "ponies" || p.Port != 43191 || p.Period != time.Second || p.Timeout != 5*time.Second || p.Maturity != 10*time.Second || p.Key != "shame_on_me" || p.Seq != 1 {
		t.Errorf("%+v", p)
	}
	if p.Nodes[0].CN != "sparkling" {
		t.Errorf("nodes not sorted by id: %+v", p.Nodes)
	}
	o := s.Clusters[1]
	if o.Period != DefaultPeriod || o.Timeout != DefaultTimeout || o.Maturity != DefaultTimeout || o.Key != "" {
		t.Errorf("defaults: %+v", o)
	}
}

func TestReadConfigErrors(t *testing.T) {
	node := `<node id="183bf75c-507a-48db-8fb4-5fdcf77e1089" cn="a" address="127.0.0.1" port="1"/>`
	for _, tc := range []struct{ name, body, want string }{
		{"unknown attribute", `<cluster name="a" port="1" seq="1" colour="red">` + node + `</cluster>`, `app.conf:3: unknown attribute "colour"`},
		{"unknown element", `<cluster name="a" port="1" seq="1"><nod/></cluster>`, `app.conf:3: unknown element <nod>`},
		{"missing seq", `<cluster name="a" port="1">` + node + `</cluster>`, `app.conf:3: <cluster> lacks required attribute "seq"`},
		{"bad seq", `<cluster name="a" port="1" seq="one">` + node + `</cluster>`, `app.conf:3: attribute "seq" of <cluster>: "one" is not an integer`},
		{"bad id", `<cluster name="a" port="1" seq="1"><node id="x" cn="a" address="127.0.0.1" port="1"/></cluster>`, `app.conf:3: attribute "id" of <node>`},
		{"period too long", `<cluster name="a" port="1" seq="1" period="6000" timeout="7000">` + node + `</cluster>`, `app.conf:3: cluster "a": period 6000 out of range`},
		{"timeout under period", `<cluster name="a" port="1" seq="1" period="500" timeout="100">` + node + `</cluster>`, `timeout 100 ms is shorter than period 500 ms`},
		{"hostname", `<cluster name="a" port="1" seq="1"><node id="183bf75c-507a-48db-8fb4-5fdcf77e1089" cn="a" address="localhost" port="1"/></cluster>`, `address "localhost" is not an IP address`},
		{"duplicate node", `<cluster name="a" port="1" seq="1">` + node + node + `</cluster>`, `appears twice`},
		{"duplicate name", `<cluster name="a" port="1" seq="1">` + node + "</cluster>\n<cluster name=\"a\" port=\"2\" seq=\"1\">" + node + `</cluster>`, `app.conf:4: cluster "a" is declared twice (first at`},
		{"duplicate port", `<cluster name="a" port="1" seq="1">` + node + "</cluster>\n<cluster name=\"b\" port=\"1\" seq=\"1\">" + node + `</cluster>`, `app.conf:4: cluster "b" uses port 1`},
		{"port range", `<cluster name="a" port="70000" seq="1">` + node + `</cluster>`, `port 70000 out of range`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := loadConf(t, "<app>\n<clusters>\n"+tc.body+"\n</clusters>\n</app>\n")
			_, err := ReadConfig(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("%v is not ErrInvalid", err)
			}
		})
	}
}

func TestParseBody(t *testing.T) {
	cfg, err := ParseBody([]byte(`<cluster name="a" port="1" seq="4"><node id="183BF75C-507a-48db-8fb4-5fdcf77e1089" cn="a" address="10.0.0.1" port="1"/></cluster>`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Seq != 4 || cfg.Nodes[0].ID != "183bf75c-507a-48db-8fb4-5fdcf77e1089" {
		t.Errorf("%+v", cfg)
	}
	// The environment is not consulted: a reference takes its default.
	env, err := ParseBody([]byte(`<cluster name="{{ENV:dflt:{HOME}}}" port="1" seq="1"><node id="183BF75C-507a-48db-8fb4-5fdcf77e1089" cn="a" address="10.0.0.1" port="1"/></cluster>`))
	if err != nil || env.Name != "dflt" {
		t.Errorf("env reference: %q %v", env.Name, err)
	}
	for _, tc := range []struct{ body, want string }{
		{``, "syntax"},
		{`<clusters/>`, "missing required section /cluster"},
		{`<cluster name="a" port="1" seq="1"><include file="/etc/passwd"/></cluster>`, "<include> is not allowed"},
		{`<cluster name="a" port="1" seq="1" backingstore="/tmp"/>`, `"backingstore" is not allowed`},
		{"<cluster name=\"a\"\n port=\"x\" seq=\"1\"/>", `body:2: attribute "port"`},
	} {
		if _, err := ParseBody([]byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.body, err, tc.want)
		}
	}
}

func FuzzParseBody(f *testing.F) {
	f.Add([]byte(`<cluster name="a" port="1" seq="4"><node id="183bf75c-507a-48db-8fb4-5fdcf77e1089" cn="a" address="10.0.0.1" port="1"/></cluster>`))
	f.Add([]byte(`<cluster name="a" port="1" seq="4" period="0" timeout="-1" maturity="9"/>`))
	f.Add([]byte(`<cluster name="a" port="1" seq="1"><include file="x"/></cluster>`))
	f.Add([]byte(`<?xml version="1.0"?><cluster/>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cfg, err := ParseBody(body)
		if err != nil {
			return
		}
		// What is accepted is valid and survives a round trip.
		if err := cfg.check(); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		again, err := ParseBody([]byte(fragment(clusterXML(cfg, true))))
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if again.Name != cfg.Name || again.Seq != cfg.Seq || len(again.Nodes) != len(cfg.Nodes) || again.Timeout != cfg.Timeout {
			t.Fatalf("round trip changed %+v into %+v", cfg, again)
		}
	})
}

func TestMetaRoundTrip(t *testing.T) {
	m := meta{boot: time.Unix(100, 5), seq: -3, payloads: map[PayloadKey][]byte{{1, 2}: []byte("ab"), {0, 0}: {}, {9, 9}: []byte("zzz")}}
	got, err := decodeMeta(m.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !got.boot.Equal(m.boot) || got.seq != m.seq || !samePayloads(got.payloads, m.payloads) {
		t.Fatalf("%+v", got)
	}
	enc := m.encode()
	for _, bad := range [][]byte{nil, enc[:5], append([]byte{2}, enc[1:]...), enc[:len(enc)-1], append(enc, 0)} {
		if _, err := decodeMeta(bad); !errors.Is(err, errMeta) {
			t.Errorf("%x: %v", bad, err)
		}
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(meta{boot: time.Unix(1, 0), payloads: map[PayloadKey][]byte{{1, 1}: []byte("x")}}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		if got := m.encode(); len(got) != len(b) {
			t.Fatalf("re-encoded %d bytes from %d", len(got), len(b))
		}
	})
}
