package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

func confFor(ports []int, seq int, members int, key string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<app>\n  <clusters>\n    <cluster name=\"c\" port=\"%d\" period=\"50\" timeout=\"500\" seq=\"%d\" key=\"%s\">\n", ports[0], seq, key)
	for i := range members {
		fmt.Fprintf(&b, "      <node id=\"%s\" cn=\"n%d\" address=\"127.0.0.1\" port=\"%d\"/>\n", nodeID(i+1), i+1, ports[i])
	}
	b.WriteString("    </cluster>\n  </clusters>\n</app>\n")
	return b.String()
}

func bodyFor(ports []int, seq int, members int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<cluster name=\"c\" port=\"%d\" period=\"50\" timeout=\"500\" seq=\"%d\" key=\"k\">", ports[0], seq)
	for i := range members {
		fmt.Fprintf(&b, "<node id=\"%s\" cn=\"n%d\" address=\"127.0.0.1\" port=\"%d\"/>", nodeID(i+1), i+1, ports[i])
	}
	b.WriteString("</cluster>")
	return b.String()
}

func TestManagerGeneratesMyID(t *testing.T) {
	conf, path := loadConf(t, "<app><clusters/></app>")
	m, err := NewManager(conf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := conf.Flush(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !regexp.MustCompile(`^`+uuidPattern+`$`).MatchString(m.MyID()) || !strings.Contains(string(b), `my_id="`+m.MyID()+`"`) {
		t.Errorf("my_id %s not written back: %s", m.MyID(), b)
	}
}

func TestManagerUpdateAndREST(t *testing.T) {
	ports := freePorts(t, 3)
	var mgrs []*Manager
	var paths []string
	var srvs []*httptest.Server
	for i := range 3 {
		// Nodes 1 and 2 know each other; node 3 knows all three.
		members := 2
		if i == 2 {
			members = 3
		}
		conf, path := loadConf(t, confFor(ports, 1, members, "k"))
		if err := conf.Set("//clusters/@my_id", nodeID(i+1)); err != nil {
			t.Fatal(err)
		}
		m, err := NewManager(conf, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		mx := rest.New(rest.Options{})
		if err := m.Mount(mx); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(mx)
		t.Cleanup(srv.Close)
		mgrs, paths, srvs = append(mgrs, m), append(paths, path), append(srvs, srv)
	}
	alive := func(m *Manager, id string) bool {
		c, _ := m.Cluster("c")
		n, ok := c.Node(id)
		return ok && n.State == Alive
	}
	eventually(t, wait, "1 and 2 see each other", func() bool { return alive(mgrs[0], nodeID(2)) && alive(mgrs[1], nodeID(1)) })
	if alive(mgrs[0], nodeID(3)) {
		t.Fatal("node 1 counts node 3 before it is configured")
	}

	// GET /cluster.json
	var topo TopologyJSON
	getJSON(t, srvs[0].URL+"/cluster/c.json", &topo)
	if topo.MyID != nodeID(1) || len(topo.Clusters["c"].Nodes) != 2 || topo.Clusters["c"].Seq != 1 {
		t.Fatalf("%+v", topo)
	}
	resp, err := http.Get(srvs[0].URL + "/cluster")
	if err != nil {
		t.Fatal(err)
	}
	xml, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(xml), `<clusters my_id="`+nodeID(1)+`">`) || !strings.Contains(string(xml), `<cluster name="c"`) || strings.Contains(string(xml), `key=`) {
		t.Errorf("XML: %s", xml)
	}
	if code := status(t, "GET", srvs[0].URL+"/cluster/nope.json", ""); code != http.StatusNotFound {
		t.Errorf("unknown cluster: %d", code)
	}

	// POST with seq 2 adding node 3 on node 1; written back at once.
	if code := status(t, "POST", srvs[0].URL+"/cluster", bodyFor(ports, 2, 3)); code != http.StatusNoContent {
		t.Fatalf("POST: %d", code)
	}
	b, _ := os.ReadFile(paths[0])
	if !strings.Contains(string(b), `seq="2"`) || !strings.Contains(string(b), nodeID(3)) {
		t.Errorf("not written back:\n%s", b)
	}
	if _, err := config.Load(paths[0], config.Options{Sections: []config.Section{Section}}); err != nil {
		t.Errorf("written config does not load: %v", err)
	}
	eventually(t, wait, "node 1 sees node 3", func() bool { return alive(mgrs[0], nodeID(3)) })
	// The others fetch the newer list from node 1 and converge.
	eventually(t, wait, "all see all", func() bool {
		for _, m := range mgrs {
			for i := range 3 {
				if !alive(m, nodeID(i+1)) {
					return false
				}
			}
		}
		return true
	})
	for i, p := range paths {
		eventually(t, wait, "written back everywhere", func() bool {
			b, _ := os.ReadFile(p)
			return strings.Contains(string(b), `seq="2"`) && strings.Contains(string(b), nodeID(3)) && strings.Contains(string(b), fmt.Sprintf(`port="%d" period`, ports[i]))
		})
	}

	// Equal and lower seq refused.
	for _, seq := range []int{2, 1} {
		if code := status(t, "POST", srvs[0].URL+"/cluster", bodyFor(ports, seq, 2)); code != http.StatusConflict {
			t.Errorf("seq %d: %d", seq, code)
		}
	}
	// A list without this node is refused.
	if code := status(t, "POST", srvs[2].URL+"/cluster", bodyFor(ports, 5, 2)); code != http.StatusUnprocessableEntity {
		t.Errorf("without me: %d", code)
	}
	if code := status(t, "POST", srvs[0].URL+"/cluster", "<cluster"); code != http.StatusBadRequest {
		t.Errorf("bad body: %d", code)
	}

	// Console.
	var out bytes.Buffer
	if err := mgrs[0].ShowCluster(&out, []string{"c"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "cluster c: seq 2") || strings.Count(out.String(), "alive") != 3 || !strings.Contains(out.String(), "(me)") {
		t.Errorf("show cluster:\n%s", out.String())
	}
	if err := mgrs[0].ShowCluster(&out, []string{"zz"}); err == nil {
		t.Error("show cluster zz worked")
	}
	if got := mgrs[0].CompleteCluster(""); len(got) != 1 || got[0] != "c" {
		t.Errorf("complete: %v", got)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func status(t *testing.T, method, url, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("X-Mtev-Conf-Sync", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, url, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return resp.StatusCode
}

func TestManagerReload(t *testing.T) {
	ports := freePorts(t, 2)
	conf, path := loadConf(t, confFor(ports, 1, 1, "k"))
	if err := conf.Set("//clusters/@my_id", nodeID(1)); err != nil {
		t.Fatal(err)
	}
	if err := conf.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(conf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b, _ := os.ReadFile(path)
	next := strings.Replace(string(b), `seq="1"`, `seq="3"`, 1)
	next = strings.Replace(next, "</cluster>", fmt.Sprintf(`<node id="%s" cn="n2" address="127.0.0.1" port="%d"/></cluster>`, nodeID(2), ports[1]), 1)
	if err := os.WriteFile(path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := conf.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	c, _ := m.Cluster("c")
	if cfg := c.Config(); cfg.Seq != 3 || len(cfg.Nodes) != 2 {
		t.Errorf("after reload: seq %d, %d nodes", cfg.Seq, len(cfg.Nodes))
	}
	// A bad file is refused with file:line and the clusters stay.
	if err := os.WriteFile(path, []byte(strings.Replace(next, `seq="3"`, `seq="x"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := conf.Reload(); err == nil {
		if err := m.Reload(); err == nil || !strings.Contains(err.Error(), "app.conf:3") {
			t.Errorf("bad reload: %v", err)
		}
	}
	if cfg := c.Config(); cfg.Seq != 3 {
		t.Errorf("bad file changed the cluster: seq %d", cfg.Seq)
	}
}

func TestManagerSeveralClusters(t *testing.T) {
	ports := freePorts(t, 2)
	xml := fmt.Sprintf(`<app><clusters my_id="%[1]s">
  <cluster name="one" port="%[2]d" period="50" timeout="500" seq="1"><node id="%[1]s" cn="me" address="127.0.0.1" port="%[2]d"/></cluster>
  <cluster name="two" port="%[3]d" period="50" timeout="500" seq="9" key="k"><node id="%[1]s" cn="me" address="127.0.0.1" port="%[3]d"/></cluster>
</clusters></app>`, nodeID(1), ports[0], ports[1])
	conf, _ := loadConf(t, xml)
	m, err := NewManager(conf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cs := m.Clusters()
	if len(cs) != 2 || cs[0].Name() != "one" || cs[1].Name() != "two" || cs[1].Config().Seq != 9 {
		t.Fatalf("clusters: %v", cs)
	}
	// Each holds its own port: a second manager on the same file fails
	// as a whole and leaves nothing running.
	if _, err := NewManager(conf, Options{}); err == nil {
		t.Fatal("second manager bound the same ports")
	}
	mx := rest.New(rest.Options{})
	if err := m.Mount(mx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mx)
	defer srv.Close()
	var topo TopologyJSON
	getJSON(t, srv.URL+"/cluster.json", &topo)
	if len(topo.Clusters) != 2 || topo.Clusters["two"].Seq != 9 {
		t.Errorf("%+v", topo)
	}
}
