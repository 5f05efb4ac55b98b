package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"github.com/mtev-supervise/mtev-supervise/internal/testport"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/cluster"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime"
)

const childEnv = "CLUSTER_EXAMPLE_CHILD"

// TestMain runs the test binary as the example service when asked: the
// real-process tests start copies of it.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Args = append([]string{os.Args[0]}, strings.Fields(os.Getenv(childEnv+"_ARGS"))...)
		main()
		return
	}
	os.Exit(m.Run())
}

const wait = 30 * time.Second

func nodeID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// freePorts picks n ports free for TCP and UDP on every address, below
// the kernel's ephemeral range (32768 and up on Linux), so that no
// outgoing connection of another test takes one before a member binds it.
func freePorts(t *testing.T, n int) []int {
	return testport.N(t, n)
}

func writeConf(t *testing.T, dir string, me int, ports []int, members, seq int) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "<cluster_example>\n  <clusters my_id=\"%s\">\n", nodeID(me))
	fmt.Fprintf(&b, "    <cluster name=\"demo\" port=\"%d\" period=\"100\" timeout=\"1000\" key=\"sesame\" seq=\"%d\">\n", ports[me-1], seq)
	for i := 1; i <= members; i++ {
		fmt.Fprintf(&b, "      <node id=\"%s\" cn=\"node%d\" address=\"127.0.0.1\" port=\"%d\"/>\n", nodeID(i), i, ports[i-1])
	}
	b.WriteString("    </cluster>\n  </clusters>\n</cluster_example>\n")
	path := filepath.Join(dir, fmt.Sprintf("node%d.conf", me))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// proc is one running copy of the service.
type proc struct {
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	seen []string // CHANGE lines
	done chan struct{}
}

func start(t *testing.T, conf string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childEnv+"_ARGS=-config "+conf+" -http 127.0.0.1:0", runtime.ForegroundEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "HTTP "); ok {
				addr <- a
			}
			if strings.HasPrefix(line, "CHANGE ") {
				p.mu.Lock()
				p.seen = append(p.seen, line)
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.done:
		t.Fatal("the service exited before serving")
	case <-time.After(wait):
		t.Fatal("the service did not start")
	}
	return p
}

func (p *proc) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen)
}

// expect polls until a CHANGE line after mark names node id with flag.
func (p *proc) expect(t *testing.T, from int, id, flag string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		p.mu.Lock()
		for _, l := range p.seen[from:] {
			f := strings.Fields(l)
			if len(f) == 4 && f[2] == id && strings.Contains("|"+f[3]+"|", "|"+flag+"|") {
				p.mu.Unlock()
				return
			}
		}
		seen := append([]string(nil), p.seen[from:]...)
		p.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s for %s; saw %q", p.url, flag, id, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) topology(t *testing.T) cluster.ClusterJSON {
	t.Helper()
	resp, err := http.Get(p.url + "/cluster/demo.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc cluster.TopologyJSON
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc.Clusters["demo"]
}

func aliveCount(c cluster.ClusterJSON) int {
	n := 0
	for _, nd := range c.Nodes {
		if nd.State == "alive" {
			n++
		}
	}
	return n
}

func TestThreeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	ports := freePorts(t, 4)
	confs := make([]string, 4)
	for i := 1; i <= 3; i++ {
		confs[i-1] = writeConf(t, dir, i, ports, 3, 1)
	}
	confs[3] = writeConf(t, dir, 4, ports, 4, 1)
	p := []*proc{start(t, confs[0]), start(t, confs[1]), start(t, confs[2])}
	for _, x := range p {
		for i := 1; i <= 3; i++ {
			x.expect(t, 0, nodeID(i), "JOINED")
		}
	}

	// SIGKILL node 3: the other two report it DIED.
	m1, m2 := p[0].mark(), p[1].mark()
	if err := p[2].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p[2].cmd.Wait()
	p[0].expect(t, m1, nodeID(3), "DIED")
	p[1].expect(t, m2, nodeID(3), "DIED")

	// Restart it: REBOOTED.
	m1, m2 = p[0].mark(), p[1].mark()
	p[2] = start(t, confs[2])
	p[0].expect(t, m1, nodeID(3), "REBOOTED")
	p[1].expect(t, m2, nodeID(3), "REBOOTED")

	// Change a payload on node 1: CHANGED_PAYLOAD on the others.
	m2, m3 := p[1].mark(), p[2].mark()
	req, _ := http.NewRequest(http.MethodPut, p[0].url+"/payload/demo/3/1", strings.NewReader("load=0.5"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT payload: %v %v", resp, err)
	}
	p[1].expect(t, m2, nodeID(1), "CHANGED_PAYLOAD")
	p[2].expect(t, m3, nodeID(1), "CHANGED_PAYLOAD")
	for _, nd := range p[1].topology(t).Nodes {
		if nd.ID == nodeID(1) && (len(nd.Payloads) != 1 || nd.Payloads[0].Size != len("load=0.5")) {
			t.Errorf("payload sizes seen by node 2: %+v", nd.Payloads)
		}
	}

	// A fourth node; POST /cluster with it (seq 2) to node 1 only.
	p = append(p, start(t, confs[3]))
	body := strings.NewReader(fmt.Sprintf(`<cluster name="demo" port="%d" period="100" timeout="1000" key="sesame" seq="2">`+
		`<node id="%s" cn="node1" address="127.0.0.1" port="%d"/><node id="%s" cn="node2" address="127.0.0.1" port="%d"/>`+
		`<node id="%s" cn="node3" address="127.0.0.1" port="%d"/><node id="%s" cn="node4" address="127.0.0.1" port="%d"/></cluster>`,
		ports[0], nodeID(1), ports[0], nodeID(2), ports[1], nodeID(3), ports[2], nodeID(4), ports[3]))
	resp, err = http.Post(p[0].url+"/cluster", "text/xml", body)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /cluster: %v %v", resp, err)
	}
	deadline := time.Now().Add(wait)
	for {
		ok := true
		for _, x := range p {
			c := x.topology(t)
			if c.Seq != 2 || len(c.Nodes) != 4 || aliveCount(c) != 4 {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			for _, x := range p {
				t.Logf("%s: %+v", x.url, x.topology(t))
			}
			t.Fatal("the members did not converge on seq 2 with four nodes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Written back on every member.
	for i := range 3 {
		b, _ := os.ReadFile(confs[i])
		if !strings.Contains(string(b), nodeID(4)) || !strings.Contains(string(b), `seq="2"`) {
			// Coalesced write-back: poll.
			deadline := time.Now().Add(wait)
			for time.Now().Before(deadline) && !strings.Contains(string(b), nodeID(4)) {
				time.Sleep(50 * time.Millisecond)
				b, _ = os.ReadFile(confs[i])
			}
			if !strings.Contains(string(b), nodeID(4)) {
				t.Errorf("node %d did not write the new topology back:\n%s", i+1, b)
			}
		}
	}
}
