package cluster

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

const wait = 20 * time.Second

func TestMembershipLifecycle(t *testing.T) {
	cfg := testConfig("life", freePorts(t, 3))
	a := startMember(t, cfg, 0, Options{})
	b := startMember(t, cfg, 1, Options{})
	c := startMember(t, cfg, 2, Options{})
	for _, m := range []member{a, b, c} {
		for i := range 3 {
			m.rec.waitFor(t, 0, nodeID(i+1), Joined, wait)
		}
	}
	if !a.c.AmIOldestVisible() || b.c.AmIOldestVisible() || c.c.AmIOldestVisible() {
		t.Error("the first node started is not the only oldest")
	}

	// A payload reaches the others.
	na, nb := a.rec.len(), b.rec.len()
	if err := c.c.SetPayload(7, 1, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	a.rec.waitFor(t, na, nodeID(3), ChangedPayload, wait)
	b.rec.waitFor(t, nb, nodeID(3), ChangedPayload, wait)
	if p, ok := a.c.Payload(nodeID(3), 7, 1); !ok || !bytes.Equal(p, []byte("hello")) {
		t.Errorf("payload seen by a: %q %v", p, ok)
	}

	// A crash (no goodbye) is found by the failure detector.
	na, nb = a.rec.len(), b.rec.len()
	c.c.Kill()
	a.rec.waitFor(t, na, nodeID(3), Died, wait)
	b.rec.waitFor(t, nb, nodeID(3), Died, wait)
	if n, _ := a.c.Node(nodeID(3)); n.State != Dead {
		t.Errorf("state after death %v", n.State)
	}

	// Back with a new boot time: REBOOTED.
	na = a.rec.len()
	c = startMember(t, cfg, 2, Options{})
	a.rec.waitFor(t, na, nodeID(3), Rebooted, wait)

	// Leaving says goodbye.
	na = a.rec.len()
	b.c.Close()
	a.rec.waitFor(t, na, nodeID(2), Died, wait)
	if n, _ := a.c.Node(nodeID(2)); n.State != Dead {
		t.Errorf("state after leaving %v", n.State)
	}
	if err := b.c.SetPayload(1, 1, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("payload after close: %v", err)
	}
}

func TestPayloadLimit(t *testing.T) {
	cfg := testConfig("limit", freePorts(t, 1))
	a := startMember(t, cfg, 0, Options{})
	if err := a.c.SetPayload(1, 1, make([]byte, MaxPayload-payloadHdr)); err != nil {
		t.Fatalf("a payload of exactly the room: %v", err)
	}
	if err := a.c.SetPayload(1, 2, []byte{1}); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("one byte more: %v", err)
	}
	if err := a.c.SetPayload(1, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.c.Payload(nodeID(1), 1, 1); ok {
		t.Error("removed payload still there")
	}
}

func TestNotMember(t *testing.T) {
	cfg := testConfig("x", freePorts(t, 2))
	_, err := Start(cfg, Options{MyID: nodeID(9)})
	if !errors.Is(err, ErrNotMember) {
		t.Fatalf("err %v", err)
	}
}

func TestPortTaken(t *testing.T) {
	cfg := testConfig("taken", freePorts(t, 1))
	startMember(t, cfg, 0, Options{})
	if _, err := Start(cfg, Options{MyID: nodeID(1)}); err == nil {
		t.Fatal("second bind of the port worked")
	}
}

func TestWrongKey(t *testing.T) {
	cfg := testConfig("keyed", freePorts(t, 2))
	cfg.Key = "right"
	a := startMember(t, cfg, 0, Options{})
	bad := cfg
	bad.Key = "wrong"
	b := startMember(t, bad, 1, Options{})
	eventually(t, wait, "the refused node says why", func() bool {
		n, _ := b.c.Node(nodeID(1))
		return n.Error != ""
	})
	n, _ := b.c.Node(nodeID(1))
	t.Logf("refused: %s", n.Error)
	if n.State == Alive {
		t.Error("the node with the wrong key sees the other alive")
	}
	if n, _ := a.c.Node(nodeID(2)); n.State == Alive {
		t.Error("the node with the right key accepted the wrong one")
	}
}

func TestMaturityAndRing(t *testing.T) {
	cfg := testConfig("ring", freePorts(t, 2))
	cfg.Maturity = time.Hour
	now := time.Now()
	old := startMember(t, cfg, 0, Options{Boot: now.Add(-2 * time.Hour)})
	young := startMember(t, cfg, 1, Options{Boot: now})
	old.rec.waitFor(t, 0, nodeID(2), Joined, wait)
	n, _ := old.c.Node(nodeID(2))
	if n.State != Alive || n.Mature {
		t.Errorf("young node: %v mature=%v", n.State, n.Mature)
	}
	r := old.c.Ring()
	if r.Len() != 1 {
		t.Fatalf("ring has %d nodes, want only the mature one", r.Len())
	}
	if o, _ := r.LookupString("k"); o != nodeID(1) {
		t.Errorf("owner %s", o)
	}
	if !old.c.AmIOldestVisible() {
		t.Error("old node is not oldest")
	}
	young.rec.waitFor(t, 0, nodeID(1), Joined, wait)
	if young.c.AmIOldestVisible() {
		t.Error("young node thinks it is oldest")
	}
}
