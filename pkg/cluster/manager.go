package cluster

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

// Manager runs the clusters of a process (each on its own port), applies
// topology updates by seq and writes them back to the living config.
type Manager struct {
	opts Options
	conf *config.Config

	mu       sync.Mutex // serialises Update and Close; held while a cluster starts or stops
	clusters map[string]*Cluster
	closed   bool

	adoptq chan adoption
	stop   chan struct{}
	wg     sync.WaitGroup
}

type adoption struct {
	cfg  Config
	from string
}

// NewManager starts every cluster of conf's <clusters> section (nil conf:
// none; add them with Update). When the section has no my_id, one is
// generated and written back, as libmtev does; opts.MyID, when set,
// overrides the file. Start is all-or-nothing: a cluster that cannot
// start stops the ones already started.
func NewManager(conf *config.Config, opts Options) (*Manager, error) {
	if opts.Boot.IsZero() {
		opts.Boot = time.Now()
	}
	m := &Manager{opts: opts, conf: conf, clusters: map[string]*Cluster{}, adoptq: make(chan adoption, 16), stop: make(chan struct{})}
	m.opts.adopt = func(cfg Config, from string) {
		select {
		case m.adoptq <- adoption{cfg, from}:
		default: // busy: the node asks again on its next change
		}
	}
	m.wg.Add(1)
	go m.adoptLoop()
	var s Settings
	if conf != nil {
		var err error
		if s, err = ReadConfig(conf); err != nil {
			return nil, err
		}
	}
	if m.opts.MyID == "" {
		m.opts.MyID = s.MyID
	}
	m.opts.MyID = strings.ToLower(m.opts.MyID)
	if m.opts.MyID == "" {
		m.opts.MyID = newUUID()
		if conf != nil {
			if _, ok, _ := conf.Find("//clusters"); ok {
				if err := conf.Set("//clusters/@my_id", m.opts.MyID); err != nil {
					return nil, fmt.Errorf("cluster: write my_id: %w", err)
				}
			}
		}
	}
	for _, cc := range s.Clusters {
		c, err := Start(cc, m.opts)
		if err != nil {
			m.Close()
			return nil, err
		}
		m.clusters[cc.Name] = c
	}
	return m, nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// MyID returns this process's node id.
func (m *Manager) MyID() string { return m.opts.MyID }

// Cluster returns the running cluster of that name.
func (m *Manager) Cluster(name string) (*Cluster, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clusters[name]
	return c, ok
}

// Clusters returns the running clusters sorted by name.
func (m *Manager) Clusters() []*Cluster {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Cluster, 0, len(m.clusters))
	for _, c := range m.clusters {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Cluster) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

// Outcome says what Update did.
type Outcome int

const (
	// Created a new cluster.
	Created Outcome = iota
	// Updated the node list and seq in place.
	Updated
	// Restarted the cluster's gossip: its port, key or timers changed.
	Restarted
)

// Update applies a cluster configuration: a new cluster starts; an
// existing one is changed only when cfg.Seq is higher than its own
// (ErrStaleSeq otherwise). The change is written back to the living
// config (at once with flush, else after the config's coalescing delay).
func (m *Manager) Update(cfg Config, flush bool) (Outcome, error) {
	return m.update(cfg, true, flush)
}

// Reload applies the <clusters> section of the living config after it was
// reloaded (SIGHUP): clusters whose seq went up are updated, new ones
// start. Nothing is written back; clusters removed from the file keep
// running (as in libmtev, a topology is replaced, never dropped).
func (m *Manager) Reload() error {
	if m.conf == nil {
		return nil
	}
	s, err := ReadConfig(m.conf)
	if err != nil {
		return err
	}
	var errs []error
	for _, cc := range s.Clusters {
		if _, err := m.update(cc, false, false); err != nil && !errors.Is(err, ErrStaleSeq) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) update(cfg Config, write, flush bool) (Outcome, error) {
	sortNodes(cfg.Nodes)
	if err := cfg.check(); err != nil {
		return 0, fmt.Errorf("cluster: update %s: %w: %v", cfg.Name, config.ErrInvalid, err)
	}
	self, ok := cfg.Node(m.opts.MyID)
	if !ok {
		return 0, fmt.Errorf("cluster: update %s: %w: %s is not among its nodes", cfg.Name, ErrNotMember, m.opts.MyID)
	}
	// One body serves every node: each binds its own node's port.
	cfg.Port = self.Port
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, fmt.Errorf("cluster: update %s: %w", cfg.Name, ErrClosed)
	}
	for name, other := range m.clusters {
		if name != cfg.Name && other.Config().Port == cfg.Port {
			return 0, fmt.Errorf("cluster: update %s: %w: port %d is used by cluster %q", cfg.Name, config.ErrInvalid, cfg.Port, name)
		}
	}
	var out Outcome
	old, exists := m.clusters[cfg.Name]
	switch {
	case !exists:
		c, err := Start(cfg, m.opts)
		if err != nil {
			return 0, err
		}
		m.clusters[cfg.Name] = c
		out = Created
	default:
		cur := old.Config()
		if cfg.Seq <= cur.Seq {
			return 0, fmt.Errorf("cluster: update %s: %w: %d, running %d", cfg.Name, ErrStaleSeq, cfg.Seq, cur.Seq)
		}
		if cfg.BindAddr == "" {
			cfg.BindAddr = cur.BindAddr
		}
		if sameTransport(cur, cfg) {
			if err := old.reconfigure(cfg); err != nil {
				return 0, fmt.Errorf("cluster: update %s: %w", cfg.Name, err)
			}
			out = Updated
		} else {
			if err := old.Close(); err != nil {
				m.errorf("cluster %s: leaving for a restart: %v", cfg.Name, err)
			}
			c, err := Start(cfg, m.opts)
			if err != nil {
				delete(m.clusters, cfg.Name)
				return 0, err
			}
			m.clusters[cfg.Name] = c
			out = Restarted
		}
	}
	if m.conf != nil && write {
		if err := m.writeBack(cfg, flush); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (m *Manager) errorf(format string, args ...any) {
	if m.opts.Logs != nil {
		m.opts.Logs.Facility("error/cluster").Printf(format, args...)
	}
}

// clusterXML renders cfg as libmtev writes it.
func clusterXML(cfg Config, withNodes bool) *etree.Element {
	e := etree.NewElement("cluster")
	e.CreateAttr("name", cfg.Name)
	for _, a := range clusterAttrs(cfg) {
		e.CreateAttr(a[0], a[1])
	}
	if withNodes {
		for _, n := range cfg.Nodes {
			e.AddChild(nodeXML(n))
		}
	}
	return e
}

func clusterAttrs(cfg Config) [][2]string {
	attrs := [][2]string{
		{"port", strconv.Itoa(cfg.Port)},
		{"period", strconv.FormatInt(ms(cfg.Period), 10)},
		{"timeout", strconv.FormatInt(ms(cfg.Timeout), 10)},
		{"maturity", strconv.FormatInt(ms(cfg.Maturity), 10)},
		{"seq", strconv.FormatInt(cfg.Seq, 10)},
	}
	if cfg.Key != "" {
		attrs = append(attrs, [2]string{"key", cfg.Key})
	}
	return attrs
}

func nodeXML(n NodeConfig) *etree.Element {
	e := etree.NewElement("node")
	e.CreateAttr("id", n.ID)
	e.CreateAttr("cn", n.CN)
	e.CreateAttr("address", n.Address)
	e.CreateAttr("port", strconv.Itoa(n.Port))
	return e
}

func fragment(e *etree.Element) string {
	doc := etree.NewDocument()
	doc.SetRoot(e.Copy())
	s, _ := doc.WriteToString()
	return s
}

// writeBack records cfg in the living config.
func (m *Manager) writeBack(cfg Config, flush bool) error {
	c := m.conf
	path := fmt.Sprintf("//clusters/cluster[@name='%s']", cfg.Name)
	wrap := func(err error) error { return fmt.Errorf("cluster: write back %s: %w", cfg.Name, err) }
	if _, ok, err := c.Find(path); err != nil {
		return wrap(err)
	} else if ok {
		for _, a := range clusterAttrs(cfg) {
			if err := c.Set(path+"/@"+a[0], a[1]); err != nil {
				return wrap(err)
			}
		}
		if cfg.Key == "" {
			if v, _ := c.String(path+"/@key", ""); v != "" {
				if err := c.Set(path+"/@key", ""); err != nil {
					return wrap(err)
				}
			}
		}
		if err := c.Remove(path + "/node"); err != nil && !errors.Is(err, config.ErrNotFound) {
			return wrap(err)
		}
		for _, n := range cfg.Nodes {
			if err := c.Add(path, fragment(nodeXML(n))); err != nil {
				return wrap(err)
			}
		}
	} else if _, ok, _ := c.Find("//clusters"); ok {
		if err := c.Add("//clusters", fragment(clusterXML(cfg, true))); err != nil {
			return wrap(err)
		}
	} else {
		cs := etree.NewElement("clusters")
		cs.CreateAttr("my_id", m.opts.MyID)
		cs.AddChild(clusterXML(cfg, true))
		if err := c.Add(c.Root().Path(), fragment(cs)); err != nil {
			return wrap(err)
		}
	}
	if flush {
		if err := c.Flush(); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// adoptLoop applies configurations fetched from members that gossip a
// higher seq, so that a topology posted to one node reaches all.
func (m *Manager) adoptLoop() {
	defer m.wg.Done()
	for {
		select {
		case <-m.stop:
			return
		case a := <-m.adoptq:
			out, err := m.Update(a.cfg, false)
			switch {
			case errors.Is(err, ErrStaleSeq):
			case err != nil:
				m.errorf("cluster %s: adopting seq %d from %s: %v", a.cfg.Name, a.cfg.Seq, a.from, err)
			default:
				if m.opts.Logs != nil {
					m.opts.Logs.Facility("notice/cluster").Printf("cluster %s: adopted seq %d from %s (%s)", a.cfg.Name, a.cfg.Seq, a.from, [...]string{"created", "updated", "restarted"}[out])
				}
			}
		}
	}
}

// Close leaves and stops every cluster. It is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.stop)
	m.mu.Unlock()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, c := range m.clusters {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
