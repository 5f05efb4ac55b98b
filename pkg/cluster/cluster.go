package cluster

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	stdlog "log"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/mtev-supervise/mtev-supervise/pkg/cluster/cht"
	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

// Flags say what changed about a node; libmtev's values, plus Joined.
type Flags uint8

const (
	// Died: the failure detector declared the node dead, or it left.
	Died Flags = 1
	// Rebooted: the node's boot time changed (it restarted).
	Rebooted Flags = 2
	// ChangedSeq: the node's configuration seq changed.
	ChangedSeq Flags = 4
	// ChangedPayload: one of the node's payloads changed.
	ChangedPayload Flags = 8
	// Joined: first contact with the node, or contact again after it had
	// died without restarting. libmtev reports a first contact as
	// REBOOTED; here a reboot is only a reboot.
	Joined Flags = 16
)

var flagNames = []string{"DIED", "REBOOTED", "CHANGED_SEQ", "CHANGED_PAYLOAD", "JOINED"}

// String lists the flags as "DIED|REBOOTED".
func (f Flags) String() string {
	var parts []string
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if len(parts) == 0 {
		return "NONE"
	}
	return strings.Join(parts, "|")
}

// State is a node's membership state as this process sees it.
type State int

const (
	// Unknown: never heard from.
	Unknown State = iota
	Alive
	// Suspect: a probe failed; dead unless it answers before the timeout.
	Suspect
	// Dead: declared dead by the failure detector, or gone after saying
	// goodbye (Close).
	Dead
)

func (s State) String() string {
	return [...]string{"unknown", "alive", "suspect", "dead"}[s]
}

// Node is a snapshot of one configured node.
type Node struct {
	ID, CN, Address string
	Port            int
	// Self is this process.
	Self  bool
	State State
	// BootTime and Seq are what the node last gossiped (zero before the
	// first contact).
	BootTime time.Time
	Seq      int64
	Payloads map[PayloadKey][]byte
	// LastContact is the last time the node answered a probe or sent news.
	LastContact time.Time
	// Mature: alive and up for at least the cluster's maturity. Only
	// mature nodes are counted (Ring).
	Mature bool
	// Error is the last problem reaching or reading the node, if any.
	Error string
}

// Change is what the NodeChanged hook point and Options.OnChange receive.
type Change struct {
	Cluster *Cluster
	// Node after the change, Old before it (zero on first contact).
	Node, Old Node
	Flags     Flags
}

// NodeChanged is libmtev's mtev_cluster_handle_node_update: it fires when
// a node of any cluster dies, reboots, joins or changes its seq or
// payload. Functions run on the cluster's event goroutine, one change at
// a time per cluster; they must not block for long (a slow function delays
// later changes of that cluster, never the gossip).
var NodeChanged = hook.New[Change]("cluster_handle_node_update", "a cluster node died, rebooted, joined or changed its seq or payload")

// Options tune a cluster beyond its Config.
type Options struct {
	// MyID is this process's node id (required): it must be one of the
	// cluster's nodes.
	MyID string
	// Boot is this process's boot time; zero means now.
	Boot time.Time
	// OnChange, when set, receives every change before the NodeChanged
	// hook point, on the same goroutine.
	OnChange func(Change)
	// Logs receives memberlist's and this package's lines on the
	// "error/cluster" and "debug/cluster" facilities; nil discards them.
	Logs *log.Graph
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// adopt receives newer configurations fetched from other nodes; the
	// Manager sets it. It must not block.
	adopt func(cfg Config, from string)
}

// Errors of Start and Update.
var (
	// ErrNotMember: this process's id is not among the cluster's nodes.
	ErrNotMember = errors.New("this node is not a member")
	// ErrClosed: the cluster (or manager) was closed.
	ErrClosed = errors.New("closed")
	// ErrStaleSeq: an update did not carry a higher seq.
	ErrStaleSeq = errors.New("seq is not newer")
)

type nodeState struct {
	cfg         NodeConfig
	state       State
	known       bool
	meta        meta
	lastContact time.Time
	err         string
}

// Cluster is one running cluster: a memberlist instance on the cluster's
// port, and this process's view of the configured nodes.
type Cluster struct {
	opts Options
	now  func() time.Time
	errl *log.Facility
	dbgl *log.Facility

	// mu guards everything below it. Lock order: Manager.mu, then
	// Cluster.mu; memberlist's own locks are never held while mu is
	// taken by this package (delegates only enqueue).
	mu     sync.RWMutex
	cfg    Config
	self   meta
	nodes  map[string]*nodeState
	ml     *memberlist.Memberlist
	closed bool
	ring   *cht.Ring
	ringOf string // the member list the ring was built from

	kick   chan struct{} // wakes the rejoin goroutine
	q      chan struct{} // wakes the event goroutine
	qmu    sync.Mutex
	queue  []event
	stop   chan struct{}
	wg     sync.WaitGroup
	joinMu sync.Mutex // one join round at a time
}

type eventKind int

const (
	evJoin eventKind = iota
	evUpdate
	evLeave
	evContact
	// evWant: a node asks for our configuration (name is who asks).
	evWant
	// evConfig: a node sent its configuration (meta holds the XML).
	evConfig
)

type event struct {
	kind eventKind
	name string
	meta []byte
	at   time.Time
}

// Start binds the cluster's port, joins the configured nodes that answer
// and keeps trying the others. It fails when the port cannot be bound or
// this node is not a member.
func Start(cfg Config, opts Options) (*Cluster, error) {
	opts.MyID = strings.ToLower(opts.MyID)
	self, ok := cfg.Node(opts.MyID)
	if !ok {
		return nil, fmt.Errorf("cluster: start %s: %w: %s is not among its nodes", cfg.Name, ErrNotMember, opts.MyID)
	}
	// The others reach this node at its own node's port: bind that.
	cfg.Port = self.Port
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("cluster: start %s: %w", cfg.Name, err)
	}
	c := &Cluster{opts: opts, now: opts.Now, q: make(chan struct{}, 1), kick: make(chan struct{}, 1), stop: make(chan struct{})}
	if c.now == nil {
		c.now = time.Now
	}
	if opts.Logs != nil {
		c.errl = opts.Logs.Facility("error/cluster")
		c.dbgl = opts.Logs.Facility("debug/cluster")
	}
	boot := opts.Boot
	if boot.IsZero() {
		boot = c.now()
	}
	c.self = meta{boot: boot, seq: cfg.Seq, payloads: map[PayloadKey][]byte{}}
	c.cfg = cfg
	c.nodes = map[string]*nodeState{}
	for _, n := range cfg.Nodes {
		c.nodes[n.ID] = &nodeState{cfg: n}
	}
	ml, err := memberlist.Create(c.memberlistConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("cluster: start %s: %w", cfg.Name, err)
	}
	c.ml = ml
	c.wg.Add(2)
	go c.events()
	go c.rejoin()
	c.joinMissing()
	return c, nil
}

// reconfigure applies a configuration that keeps the port, key and
// timers: the node list and seq change in place, the new seq is gossiped
// and new nodes are contacted at once.
func (c *Cluster) reconfigure(cfg Config) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.cfg = cfg
	c.self.seq = cfg.Seq
	nodes := make(map[string]*nodeState, len(cfg.Nodes))
	added := map[string]bool{}
	for _, n := range cfg.Nodes {
		ns := c.nodes[n.ID]
		if ns == nil {
			ns = &nodeState{}
			added[n.ID] = true
		}
		ns.cfg = n
		nodes[n.ID] = ns
	}
	c.nodes = nodes
	c.ring, c.ringOf = nil, ""
	ml := c.ml
	c.mu.Unlock()
	// New nodes memberlist already knows (they joined us before we
	// listed them) get no new join event: make one.
	for _, m := range ml.Members() {
		if added[m.Name] {
			c.enqueue(event{kind: evJoin, name: m.Name, meta: bytes.Clone(m.Meta), at: c.now()})
		}
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return c.publish()
}

// sameTransport reports whether b can be applied to a cluster running a
// in place (same port, key and timers).
func sameTransport(a, b Config) bool {
	return a.Port == b.Port && a.Key == b.Key && a.BindAddr == b.BindAddr && a.Period == b.Period && a.Timeout == b.Timeout
}

// MemberlistConfig maps a cluster's settings onto memberlist (see the
// package documentation for the rules).
func (c *Cluster) memberlistConfig(cfg Config) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.opts.MyID
	mc.Label = cfg.Name
	mc.BindAddr = cfg.BindAddr
	if mc.BindAddr == "" {
		mc.BindAddr = "0.0.0.0"
	}
	mc.BindPort = cfg.Port
	self, _ := cfg.Node(c.opts.MyID)
	mc.AdvertiseAddr = self.Address
	mc.AdvertisePort = self.Port
	tuneTimers(mc, cfg)
	if cfg.Key != "" {
		k := sha256.Sum256([]byte(cfg.Key))
		mc.SecretKey = k[:]
	}
	d := &delegate{c: c}
	mc.Delegate = d
	mc.Events = d
	mc.Ping = d
	mc.Logger = stdlog.New(logWriter{c}, "", 0)
	return mc
}

// tuneTimers sets memberlist's probe and suspicion timers from period,
// timeout and the number of nodes.
func tuneTimers(mc *memberlist.Config, cfg Config) {
	mc.ProbeInterval = cfg.Period
	mc.ProbeTimeout = min(max(cfg.Period/2, time.Millisecond), 500*time.Millisecond)
	mc.GossipInterval = min(cfg.Period, 200*time.Millisecond)
	// memberlist declares a suspect dead after
	// SuspicionMult × max(1, log10(n)) × ProbeInterval; the suspicion
	// starts one failed probe (one period) after the last answer.
	scale := math.Max(1, math.Log10(float64(max(len(cfg.Nodes), 1))))
	rest := float64(cfg.Timeout-cfg.Period) / (float64(cfg.Period) * scale)
	mc.SuspicionMult = max(1, int(math.Round(rest)))
	mc.SuspicionMaxTimeoutMult = 1
	mc.TCPTimeout = min(max(cfg.Timeout, time.Second), 10*time.Second)
	mc.PushPullInterval = max(2*cfg.Timeout, 10*time.Second)
	mc.DeadNodeReclaimTime = cfg.Timeout
}

// Name returns the cluster's name.
func (c *Cluster) Name() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cfg.Name
}

// Config returns the cluster's current configuration.
func (c *Cluster) Config() Config {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cfg := c.cfg
	cfg.Nodes = slices.Clone(cfg.Nodes)
	return cfg
}

// MyID returns this process's node id.
func (c *Cluster) MyID() string { return c.opts.MyID }

// BootTime returns this process's boot time as gossiped.
func (c *Cluster) BootTime() time.Time { return c.self.boot }

// SetPayload sets (or, with empty data, removes) this node's payload for
// (app, key) and gossips it: the other nodes see CHANGED_PAYLOAD. All of
// a node's payloads share MaxPayload bytes (ErrPayloadTooLarge).
func (c *Cluster) SetPayload(app, key uint8, data []byte) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("cluster: set payload: %w", ErrClosed)
	}
	k := PayloadKey{app, key}
	next := make(map[PayloadKey][]byte, len(c.self.payloads)+1)
	for kk, v := range c.self.payloads {
		next[kk] = v
	}
	if len(data) == 0 {
		delete(next, k)
	} else {
		next[k] = bytes.Clone(data)
	}
	if sz := payloadSize(next); sz > MaxPayload {
		c.mu.Unlock()
		return fmt.Errorf("cluster: set payload %d/%d: %w: %d bytes of %d", app, key, ErrPayloadTooLarge, sz, MaxPayload)
	}
	c.self.payloads = next
	c.mu.Unlock()
	return c.publish()
}

// Payload returns a node's payload for (app, key).
func (c *Cluster) Payload(id string, app, key uint8) ([]byte, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if id == c.opts.MyID {
		v, ok := c.self.payloads[PayloadKey{app, key}]
		return bytes.Clone(v), ok
	}
	ns := c.nodes[id]
	if ns == nil {
		return nil, false
	}
	v, ok := ns.meta.payloads[PayloadKey{app, key}]
	return bytes.Clone(v), ok
}

// publish gossips this node's metadata after a change.
func (c *Cluster) publish() error {
	c.mu.RLock()
	ml, timeout := c.ml, c.cfg.Timeout
	c.mu.RUnlock()
	if err := ml.UpdateNode(timeout); err != nil {
		return fmt.Errorf("cluster: publish: %w", err)
	}
	return nil
}

func (c *Cluster) selfMeta() []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.self.encode()
}

// Nodes returns a snapshot of every configured node, sorted by id.
func (c *Cluster) Nodes() []Node {
	suspects := map[string]bool{}
	c.mu.RLock()
	ml := c.ml
	c.mu.RUnlock()
	for _, m := range ml.Members() {
		if m.State == memberlist.StateSuspect {
			suspects[m.Name] = true
		}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	now := c.now()
	out := make([]Node, 0, len(c.nodes))
	for _, n := range c.cfg.Nodes {
		nd := c.snapshotLocked(c.nodes[n.ID], now)
		if nd.State == Alive && suspects[n.ID] {
			nd.State = Suspect
		}
		out = append(out, nd)
	}
	return out
}

// Node returns a snapshot of one configured node.
func (c *Cluster) Node(id string) (Node, bool) {
	for _, n := range c.Nodes() {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

func (c *Cluster) snapshotLocked(ns *nodeState, now time.Time) Node {
	n := Node{ID: ns.cfg.ID, CN: ns.cfg.CN, Address: ns.cfg.Address, Port: ns.cfg.Port,
		Self: ns.cfg.ID == c.opts.MyID, State: ns.state, LastContact: ns.lastContact, Error: ns.err}
	m := ns.meta
	if n.Self {
		m = c.self
		n.State = Alive
		n.LastContact = now
	}
	if ns.known || n.Self {
		n.BootTime, n.Seq = m.boot, m.seq
		n.Payloads = make(map[PayloadKey][]byte, len(m.payloads))
		for k, v := range m.payloads {
			n.Payloads[k] = bytes.Clone(v)
		}
	}
	n.Mature = n.State == Alive && now.Sub(n.BootTime) >= c.cfg.Maturity
	return n
}

// Ring returns the consistent-hash ring of the mature alive nodes (by id,
// default weight). It is rebuilt only when that set changes.
func (c *Cluster) Ring() *cht.Ring {
	var ids []string
	for _, n := range c.Nodes() {
		if n.Mature {
			ids = append(ids, n.ID)
		}
	}
	key := strings.Join(ids, ",")
	c.mu.RLock()
	r, of := c.ring, c.ringOf
	c.mu.RUnlock()
	if r != nil && of == key {
		return r
	}
	r, err := cht.FromNames(ids...)
	if err != nil {
		// Ids are distinct and non-empty by configuration.
		panic(err)
	}
	c.mu.Lock()
	c.ring, c.ringOf = r, key
	c.mu.Unlock()
	return r
}

// Oldest returns the alive node with the earliest boot time (ties by id).
func (c *Cluster) Oldest() (Node, bool) {
	var best Node
	found := false
	for _, n := range c.Nodes() {
		if n.State != Alive {
			continue
		}
		if !found || n.BootTime.Before(best.BootTime) || (n.BootTime.Equal(best.BootTime) && n.ID < best.ID) {
			best, found = n, true
		}
	}
	return best, found
}

// AmIOldestVisible reports whether this node is the oldest alive node it
// can see, for leader-style work. As in libmtev it is true when no node
// is visible.
func (c *Cluster) AmIOldestVisible() bool {
	o, ok := c.Oldest()
	return !ok || o.ID == c.opts.MyID
}

// Close leaves the cluster (telling the others, so they see DIED at once)
// and stops. It is idempotent.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	ml, timeout := c.ml, c.cfg.Period*2
	c.mu.Unlock()
	close(c.stop)
	lerr := ml.Leave(max(timeout, 100*time.Millisecond))
	serr := ml.Shutdown()
	c.wg.Wait()
	if err := errors.Join(lerr, serr); err != nil {
		return fmt.Errorf("cluster: close %s: %w", c.cfg.Name, err)
	}
	return nil
}

// Kill stops the cluster without saying goodbye, as a crash would: the
// others find out through the failure detector. For tests and drills.
func (c *Cluster) Kill() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	ml := c.ml
	c.mu.Unlock()
	close(c.stop)
	err := ml.Shutdown()
	c.wg.Wait()
	return err
}

// enqueue hands an event from memberlist to the event goroutine; it never
// blocks (memberlist calls delegates with its locks held).
func (c *Cluster) enqueue(e event) {
	c.qmu.Lock()
	c.queue = append(c.queue, e)
	c.qmu.Unlock()
	select {
	case c.q <- struct{}{}:
	default:
	}
}

// events is the goroutine that owns changes of node state and runs hooks.
func (c *Cluster) events() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.q:
		}
		c.qmu.Lock()
		batch := c.queue
		c.queue = nil
		c.qmu.Unlock()
		for _, e := range batch {
			switch e.kind {
			case evWant:
				c.sendConfig(e.name)
				continue
			case evConfig:
				c.adoptConfig(e.name, e.meta)
				continue
			}
			if ch, ok := c.apply(e); ok {
				if ch.Flags&(Joined|Rebooted|ChangedSeq) != 0 && !ch.Node.Self && ch.Node.Seq > c.Config().Seq {
					c.askConfig(ch.Node.ID)
				}
				if c.opts.OnChange != nil {
					c.opts.OnChange(ch)
				}
				NodeChanged.Invoke(ch)
			}
		}
	}
}

// apply updates the view with one event and says what changed.
func (c *Cluster) apply(e event) (Change, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns := c.nodes[e.name]
	if ns == nil {
		if e.kind == evJoin {
			c.debugf("ignoring %s: not a configured node", e.name)
		}
		return Change{}, false
	}
	old := c.snapshotLocked(ns, e.at)
	var flags Flags
	switch e.kind {
	case evContact:
		if ns.state == Alive {
			ns.lastContact = e.at
		}
		return Change{}, false
	case evLeave:
		if ns.state != Alive && ns.state != Suspect {
			return Change{}, false
		}
		ns.state = Dead
		flags = Died
	case evJoin, evUpdate:
		m, err := decodeMeta(e.meta)
		if err != nil {
			ns.err = err.Error()
			c.errorf("node %s: %v", e.name, err)
			return Change{}, false
		}
		ns.err = ""
		switch {
		case !ns.known:
			flags = Joined
		case !m.boot.Equal(ns.meta.boot):
			flags = Rebooted
		default:
			if ns.state != Alive && ns.state != Suspect {
				flags = Joined
			}
			if m.seq != ns.meta.seq {
				flags |= ChangedSeq
			}
			if !samePayloads(m.payloads, ns.meta.payloads) {
				flags |= ChangedPayload
			}
		}
		ns.known = true
		ns.meta = m
		ns.state = Alive
		ns.lastContact = e.at
	}
	if flags == 0 {
		return Change{}, false
	}
	c.debugf("node %s (%s): %s", ns.cfg.ID, ns.cfg.CN, flags)
	return Change{Cluster: c, Node: c.snapshotLocked(ns, e.at), Old: old, Flags: flags}, true
}

// member returns memberlist's node of a configured, alive node.
func (c *Cluster) member(id string) (*memberlist.Node, *memberlist.Memberlist) {
	c.mu.RLock()
	ml := c.ml
	_, configured := c.nodes[id]
	c.mu.RUnlock()
	if !configured {
		return nil, ml
	}
	for _, m := range ml.Members() {
		if m.Name == id {
			return m, ml
		}
	}
	return nil, ml
}

// askConfig asks a node that gossips a higher seq for its configuration.
func (c *Cluster) askConfig(id string) {
	n, ml := c.member(id)
	if n == nil {
		return
	}
	if err := ml.SendReliable(n, append([]byte{msgWant}, c.opts.MyID...)); err != nil {
		c.debugf("asking %s for its configuration: %v", id, err)
	}
}

// sendConfig answers a configured node's request for our configuration.
func (c *Cluster) sendConfig(id string) {
	n, ml := c.member(id)
	if n == nil {
		c.debugf("configuration asked by %s: not a configured member", id)
		return
	}
	msg := append([]byte{msgConfig}, c.opts.MyID...)
	msg = append(msg, '\n')
	msg = append(msg, fragment(clusterXML(c.Config(), true))...)
	if err := ml.SendReliable(n, msg); err != nil {
		c.debugf("sending our configuration to %s: %v", id, err)
	}
}

// adoptConfig hands a newer configuration from a configured node to the
// owner (the Manager), which applies it off this goroutine.
func (c *Cluster) adoptConfig(from string, body []byte) {
	if n, _ := c.member(from); n == nil {
		c.debugf("configuration from %s: not a configured member", from)
		return
	}
	cfg, err := ParseBody(body)
	if err != nil {
		c.errorf("configuration from %s: %v", from, err)
		return
	}
	if cfg.Name != c.Name() || cfg.Seq <= c.Config().Seq {
		return
	}
	if c.opts.adopt != nil {
		c.opts.adopt(cfg, from)
	}
}

// rejoin keeps trying the configured nodes that are not members.
func (c *Cluster) rejoin() {
	defer c.wg.Done()
	for {
		c.mu.RLock()
		every := min(max(c.cfg.Timeout, time.Second), 30*time.Second)
		c.mu.RUnlock()
		t := time.NewTimer(every)
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-t.C:
		case <-c.kick:
			t.Stop()
		}
		c.joinMissing()
	}
}

// maxJoinRound bounds the nodes contacted in one round: one answer is
// enough for memberlist to learn the others.
const maxJoinRound = 8

// joinMissing contacts configured nodes that are not alive members.
func (c *Cluster) joinMissing() {
	c.joinMu.Lock()
	defer c.joinMu.Unlock()
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return
	}
	ml := c.ml
	members := map[string]bool{}
	c.mu.RUnlock()
	for _, m := range ml.Members() {
		members[m.Name] = true
	}
	c.mu.RLock()
	var todo []NodeConfig
	for _, n := range c.cfg.Nodes {
		if n.ID != c.opts.MyID && !members[n.ID] {
			todo = append(todo, n)
		}
	}
	c.mu.RUnlock()
	rand.Shuffle(len(todo), func(i, j int) { todo[i], todo[j] = todo[j], todo[i] })
	if len(todo) > maxJoinRound {
		todo = todo[:maxJoinRound]
	}
	for _, n := range todo {
		select {
		case <-c.stop:
			return // Close and Kill wait for this goroutine
		default:
		}
		_, err := ml.Join([]string{n.ID + "/" + n.Addr()})
		c.mu.Lock()
		if ns := c.nodes[n.ID]; ns != nil {
			if err != nil {
				ns.err = joinError(err, c.cfg.Key != "")
			} else {
				ns.err = ""
			}
		}
		c.mu.Unlock()
		if err != nil {
			c.debugf("join %s at %s: %s", n.ID, n.Addr(), joinError(err, c.cfg.Key != ""))
		}
	}
}

// joinError words a failed join; a peer that drops the connection on an
// encrypted cluster almost always holds another key.
func joinError(err error, keyed bool) string {
	// memberlist wraps causes in a multi-line list: one line reads better.
	s := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "1 error occurred:", "")), " ")
	s = strings.TrimPrefix(s, "* ")
	if strings.Contains(s, "EOF") || strings.Contains(s, "connection reset") {
		if keyed {
			return s + " (the node refused our gossip: does it have the same key?)"
		}
		return s + " (the node refused our gossip: does it expect a key?)"
	}
	return s
}

func (c *Cluster) debugf(format string, args ...any) {
	if c.dbgl != nil {
		c.dbgl.Printf("cluster %s: "+format, append([]any{c.cfg.Name}, args...)...)
	}
}

func (c *Cluster) errorf(format string, args ...any) {
	if c.errl != nil {
		c.errl.Printf("cluster %s: "+format, append([]any{c.cfg.Name}, args...)...)
	}
}

// logWriter sends memberlist's log lines to the cluster's facilities.
type logWriter struct{ c *Cluster }

func (w logWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	if strings.Contains(line, "[ERR]") || strings.Contains(line, "[WARN]") {
		if w.c.errl != nil {
			w.c.errl.Printf("%s", line)
		}
	} else if w.c.dbgl != nil {
		w.c.dbgl.Printf("%s", line)
	}
	return len(p), nil
}

// delegate adapts memberlist's Delegate, EventDelegate and PingDelegate;
// every method returns at once.
type delegate struct{ c *Cluster }

func (d *delegate) NodeMeta(limit int) []byte { return d.c.selfMeta() }

// Messages between nodes (memberlist's reliable user messages).
const (
	msgWant   = 'W' // followed by the asking node's id
	msgConfig = 'C' // followed by the sender's id, a newline, the <cluster> XML
)

func (d *delegate) NotifyMsg(b []byte) {
	if len(b) < 2 {
		return
	}
	switch b[0] {
	case msgWant:
		d.c.enqueue(event{kind: evWant, name: string(b[1:]), at: d.c.now()})
	case msgConfig:
		from, body, ok := bytes.Cut(b[1:], []byte{'\n'})
		if ok {
			d.c.enqueue(event{kind: evConfig, name: string(from), meta: bytes.Clone(body), at: d.c.now()})
		}
	}
}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

func (d *delegate) NotifyJoin(n *memberlist.Node) {
	d.c.enqueue(event{kind: evJoin, name: n.Name, meta: bytes.Clone(n.Meta), at: d.c.now()})
}

func (d *delegate) NotifyUpdate(n *memberlist.Node) {
	d.c.enqueue(event{kind: evUpdate, name: n.Name, meta: bytes.Clone(n.Meta), at: d.c.now()})
}

func (d *delegate) NotifyLeave(n *memberlist.Node) {
	d.c.enqueue(event{kind: evLeave, name: n.Name, at: d.c.now()})
}

func (d *delegate) AckPayload() []byte { return nil }

func (d *delegate) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	d.c.enqueue(event{kind: evContact, name: other.Name, at: d.c.now()})
}
