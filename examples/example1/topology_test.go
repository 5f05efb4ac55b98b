package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/internal/scripttest"
	"github.com/mtev-supervise/mtev-supervise/internal/syncbuf"
	"github.com/mtev-supervise/mtev-supervise/pkg/cluster"
	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime"
)

// The example's topology hook logs a node that joins and one that dies:
// two real cluster members on loopback, the second one then closed.
func TestTopologyHook(t *testing.T) {
	ports := make([]int, 2)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	id := func(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }
	dir := t.TempDir()
	member := func(i int) *cluster.Manager {
		var b strings.Builder
		fmt.Fprintf(&b, "<example1>\n  <clusters my_id=%q>\n    <cluster name=\"demo\" port=\"%d\" period=\"50\" timeout=\"500\" seq=\"1\">\n", id(i), ports[i-1])
		for n := 1; n <= 2; n++ {
			fmt.Fprintf(&b, "      <node id=%q cn=\"node%d\" address=\"127.0.0.1\" port=\"%d\"/>\n", id(n), n, ports[n-1])
		}
		b.WriteString("    </cluster>\n  </clusters>\n</example1>\n")
		path := filepath.Join(dir, fmt.Sprintf("node%d.conf", i))
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(path, config.Options{Sections: []config.Section{cluster.Section}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		m, err := cluster.NewManager(c, cluster.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	var out syncbuf.Buffer
	rt := &runtime.Runtime{Logs: log.New(log.WithStderr(&out))}
	defer rt.Logs.Close()
	cluster.NodeChanged.Register("test-topology", topology(rt))
	m1 := member(1)
	defer m1.Close()
	m2 := member(2)
	seen := func(change string) bool {
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, "cluster topology changed") && strings.Contains(l, id(2)) && strings.Contains(l, change) {
				return true
			}
		}
		return false
	}
	if !scripttest.Poll(func() bool { return seen("JOINED") }) {
		t.Fatalf("no JOINED of node 2 logged:\n%s", out.String())
	}
	m2.Close()
	if !scripttest.Poll(func() bool { return seen("DIED") }) {
		t.Fatalf("no DIED of node 2 logged:\n%s", out.String())
	}
}
