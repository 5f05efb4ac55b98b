package cluster

import (
	"fmt"
	"github.com/mtev-supervise/mtev-supervise/internal/testport"
	"sync"
	"testing"
	"time"
)

// freePorts returns n ports free for both UDP and TCP on 127.0.0.1.
func freePorts(t testing.TB, n int) []int {
	return testport.N(t, n)
}

func nodeID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// testConfig is a cluster of n nodes on loopback ports.
func testConfig(name string, ports []int) Config {
	c := Config{Name: name, Port: ports[0], Period: 50 * time.Millisecond, Timeout: 500 * time.Millisecond, Seq: 1, BindAddr: "127.0.0.1"}
	for i, p := range ports {
		c.Nodes = append(c.Nodes, NodeConfig{ID: nodeID(i + 1), CN: fmt.Sprintf("n%d", i+1), Address: "127.0.0.1", Port: p})
	}
	return c
}

// forNode returns cfg as node i (0-based) binds it.
func forNode(cfg Config, i int) Config {
	cfg.Port = cfg.Nodes[i].Port
	return cfg
}

// recorder collects the changes one cluster reports.
type recorder struct {
	mu      sync.Mutex
	changes []Change
	wake    chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) add(c Change) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// waitFor polls until a change about id carries all of flags, after the
// first `from` changes; it returns the index after the match.
func (r *recorder) waitFor(t testing.TB, from int, id string, flags Flags, d time.Duration) int {
	t.Helper()
	deadline := time.After(d)
	for {
		r.mu.Lock()
		for i := from; i < len(r.changes); i++ {
			c := r.changes[i]
			if c.Node.ID == id && c.Flags&flags == flags {
				r.mu.Unlock()
				return i + 1
			}
		}
		r.mu.Unlock()
		select {
		case <-r.wake:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			var seen []string
			for _, c := range r.changes[from:] {
				seen = append(seen, c.Node.ID[len(c.Node.ID)-2:]+":"+c.Flags.String())
			}
			t.Fatalf("no %s for %s within %v; saw %v", flags, id, d, seen)
			return 0
		}
	}
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.changes)
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type member struct {
	c   *Cluster
	rec *recorder
}

func startMember(t testing.TB, cfg Config, i int, opts Options) member {
	t.Helper()
	rec := newRecorder()
	opts.MyID = cfg.Nodes[i].ID
	opts.OnChange = rec.add
	c, err := Start(forNode(cfg, i), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill() })
	return member{c, rec}
}
