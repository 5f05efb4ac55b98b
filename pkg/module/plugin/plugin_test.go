package plugin

import (
	"errors"
	"strings"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
)

// module is a Module whose hook "block" waits for release.
type module struct {
	release chan struct{}
	name    string
}

func (m *module) Config(cfg map[string]string) error {
	if v, ok := cfg["bad"]; ok {
		return &KeyError{Key: "bad", Err: errors.New("refused " + v)}
	}
	if _, ok := cfg["plain"]; ok {
		return errors.New("plain refusal")
	}
	return nil
}
func (m *module) Init(name string) error { m.name = name; return nil }
func (m *module) PostInit() error        { return nil }
func (m *module) Hooks() map[string]func([]byte) hook.Result {
	return map[string]func([]byte) hook.Result{
		"answer": func(b []byte) hook.Result {
			if string(b) == `"abort"` {
				return hook.Abort
			}
			return hook.Done
		},
		"block": func([]byte) hook.Result { <-m.release; return hook.Continue },
	}
}

// client connects to m over go-plugin's in-memory net/rpc pair: the
// protocol without a process.
func client(t *testing.T, m Module) *Client {
	c, _ := goplugin.TestPluginRPCConn(t, map[string]goplugin.Plugin{Name: &RPCPlugin{Impl: m}}, nil)
	t.Cleanup(func() { c.Close() })
	raw, err := c.Dispense(Name)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*Client)
}

func TestProtocol(t *testing.T) {
	m := &module{release: make(chan struct{})}
	c := client(t, m)
	const d = 10 * time.Second
	var ke *KeyError
	if err := c.Config(map[string]string{"bad": "x"}, d); !errors.As(err, &ke) || ke.Key != "bad" || ke.Err.Error() != "refused x" {
		t.Fatalf("key error came back as %v", err)
	}
	if err := c.Config(map[string]string{"plain": ""}, d); err == nil || errors.As(err, &ke) || err.Error() != "plain refusal" {
		t.Fatalf("plain error came back as %v", err)
	}
	if err := c.Config(nil, d); err != nil {
		t.Fatal(err)
	}
	desc, err := c.Describe(d)
	if err != nil || desc.PID == 0 || len(desc.Hooks) != 2 {
		t.Fatalf("describe: %+v %v", desc, err)
	}
	if err := c.Init("inst", d); err != nil || m.name != "inst" {
		t.Fatalf("init: %v, name %q", err, m.name)
	}
	if r, err := c.Hook("answer", []byte(`"go"`), d); r != hook.Done || err != nil {
		t.Fatalf("hook: %v %v", r, err)
	}
	if r, err := c.Hook("answer", []byte(`"abort"`), d); r != hook.Abort || err != nil {
		t.Fatalf("hook: %v %v", r, err)
	}
	if _, err := c.Hook("unknown", nil, d); err == nil || !strings.Contains(err.Error(), "not attached") {
		t.Fatalf("hook on an unattached point: %v", err)
	}

	// A call that does not return: the hook call and the heartbeat give
	// up (ErrTimeout), and Stacks still answers, naming the call.
	if _, err := c.Hook("block", nil, 50*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("blocked hook: %v", err)
	}
	if err := c.Ping(50 * time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("ping during a blocked call: %v", err)
	}
	st, err := c.Stacks(d)
	if err != nil || st.Running != "hook block" || !strings.Contains(string(st.Stacks), "goroutine ") {
		t.Fatalf("stacks during a blocked call: running %q, %v\n%s", st.Running, err, st.Stacks)
	}
	close(m.release)
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(time.Second) != nil {
		if time.Now().After(deadline) {
			t.Fatal("heartbeat never came back after the call returned")
		}
	}
	// The heartbeat that timed out earlier may still be queued for the
	// lock; nothing else may run.
	if st, _ := c.Stacks(d); st.Running != "" && st.Running != "Ping" {
		t.Fatalf("between calls Stacks says %q runs", st.Running)
	}
}
