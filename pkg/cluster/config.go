package cluster

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

// Defaults, in libmtev's units.
const (
	DefaultPeriod  = 200 * time.Millisecond
	DefaultTimeout = 5 * time.Second
	// MaxPeriod is libmtev's upper bound on period.
	MaxPeriod = 5 * time.Second
)

const uuidPattern = `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`

// clusterElement declares one <cluster>; it is shared by the <clusters>
// section and the body of POST /cluster.
var clusterElement = config.Element{
	Name:     "cluster",
	Repeated: true,
	Doc:      "One cluster: the nodes listed are its members and the seeds this process joins.",
	Attrs: []config.Attr{
		{Name: "name", Type: config.TypeString, Required: true, Pattern: `[A-Za-z0-9_][A-Za-z0-9_.-]*`, Doc: "Name of the cluster, unique in the process (letters, digits, `_`, `.`, `-`)."},
		{Name: "port", Type: config.TypeInt, Required: true, Doc: "libmtev's port to bind. Each process binds the port of its own `<node>` (they agree in a working libmtev cluster); an update writes that port here."},
		{Name: "period", Type: config.TypeInt, Default: "200", Doc: "Milliseconds between failure-detector probes (memberlist's probe interval), 1 to 5000."},
		{Name: "timeout", Type: config.TypeInt, Default: "5000", Doc: "Milliseconds after which an unresponsive node is declared dead; at least `period`. Sets memberlist's suspicion timeout."},
		{Name: "maturity", Type: config.TypeInt, Doc: "Milliseconds a node must have been up (by its gossiped boot time) before it counts in the ring; default `timeout`."},
		{Name: "key", Type: config.TypeString, Doc: "Shared secret: gossip is encrypted with AES-256-GCM under SHA-256(key). A node with another key is refused. Without it gossip is plain text."},
		{Name: "seq", Type: config.TypeInt, Required: true, Doc: "Version of this cluster's configuration; an update must carry a higher one."},
	},
	Children: []config.Element{{
		Name:     "node",
		Repeated: true,
		Doc:      "A member of the cluster.",
		Attrs: []config.Attr{
			{Name: "id", Type: config.TypeString, Required: true, Pattern: uuidPattern, Doc: "The node's UUID (its `<clusters my_id>`)."},
			{Name: "cn", Type: config.TypeString, Required: true, Doc: "The node's common name, for people and certificates."},
			{Name: "address", Type: config.TypeString, Required: true, Doc: "IP address (a literal) where the node's cluster port is reached."},
			{Name: "port", Type: config.TypeInt, Required: true, Doc: "The node's cluster port (its `<cluster port>`)."},
		},
	}},
}

// Section declares the <clusters> section.
var Section = config.Section{
	Path: "clusters",
	Doc:  "Cluster membership (libmtev's `<clusters>`): gossip and failure detection on memberlist, node payloads, the consistent-hash ring.",
	Element: config.Element{
		Attrs: []config.Attr{
			{Name: "my_id", Type: config.TypeString, Pattern: uuidPattern, Doc: "This process's node UUID; generated and written back when absent."},
		},
		Children: []config.Element{clusterElement},
	},
}

// bodySection declares the body of POST /cluster: one <cluster> element.
var bodySection = config.Section{Path: "/cluster", Required: true, Element: clusterElement}

func init() { config.Register(Section) }

// Node is a configured member.
type NodeConfig struct {
	ID      string // lowercase UUID
	CN      string
	Address string
	Port    int
}

// Addr returns host:port.
func (n NodeConfig) Addr() string { return net.JoinHostPort(n.Address, strconv.Itoa(n.Port)) }

// Config is one cluster's configuration.
type Config struct {
	Name     string
	Port     int
	Period   time.Duration
	Timeout  time.Duration
	Maturity time.Duration
	Key      string
	Seq      int64
	// Nodes, sorted by ID.
	Nodes []NodeConfig
	// BindAddr is the address to bind; empty means all (0.0.0.0), as
	// libmtev. Not part of the XML: for tests and embedding.
	BindAddr string
}

// Node returns the configured node with the given id.
func (c *Config) Node(id string) (NodeConfig, bool) {
	i := slices.IndexFunc(c.Nodes, func(n NodeConfig) bool { return n.ID == id })
	if i < 0 {
		return NodeConfig{}, false
	}
	return c.Nodes[i], true
}

// check validates what the declaration cannot express; pos names the
// <cluster> element in errors.
func (c *Config) check() error {
	if c.Port <= 0 || c.Port > 65535 {
		return fmt.Errorf("port %d out of range (1 to 65535)", c.Port)
	}
	if c.Period <= 0 || c.Period > MaxPeriod {
		return fmt.Errorf("period %v out of range (1 to 5000 ms)", ms(c.Period))
	}
	if c.Timeout < c.Period {
		return fmt.Errorf("timeout %d ms is shorter than period %d ms", ms(c.Timeout), ms(c.Period))
	}
	if c.Maturity < 0 {
		return fmt.Errorf("maturity %d ms is negative", ms(c.Maturity))
	}
	seen := map[string]bool{}
	addrs := map[string]string{}
	for _, n := range c.Nodes {
		if seen[n.ID] {
			return fmt.Errorf("node %s appears twice", n.ID)
		}
		seen[n.ID] = true
		if net.ParseIP(n.Address) == nil {
			return fmt.Errorf("node %s: address %q is not an IP address", n.ID, n.Address)
		}
		if n.Port <= 0 || n.Port > 65535 {
			return fmt.Errorf("node %s: port %d out of range", n.ID, n.Port)
		}
		if other, dup := addrs[n.Addr()]; dup {
			return fmt.Errorf("nodes %s and %s share the address %s", other, n.ID, n.Addr())
		}
		addrs[n.Addr()] = n.ID
	}
	return nil
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// fromValues reads a validated <cluster> element.
func fromValues(v config.Values) (Config, error) {
	c := Config{
		Name:    v.String("@name"),
		Port:    int(v.Int("@port")),
		Period:  time.Duration(v.Int("@period")) * time.Millisecond,
		Timeout: time.Duration(v.Int("@timeout")) * time.Millisecond,
		Key:     v.String("@key"),
		Seq:     v.Int("@seq"),
	}
	c.Maturity = c.Timeout
	if s, ok := v.Node().Attr("maturity"); ok {
		m, _ := config.ParseInt(s)
		c.Maturity = time.Duration(m) * time.Millisecond
	}
	for _, nv := range v.Children("node") {
		c.Nodes = append(c.Nodes, NodeConfig{
			ID:      strings.ToLower(nv.String("@id")),
			CN:      nv.String("@cn"),
			Address: nv.String("@address"),
			Port:    int(nv.Int("@port")),
		})
	}
	sortNodes(c.Nodes)
	if err := c.check(); err != nil {
		return Config{}, &config.Error{Pos: v.Node().Pos(), Msg: fmt.Sprintf("cluster %q: %v", c.Name, err), Err: config.ErrInvalid}
	}
	return c, nil
}

func sortNodes(ns []NodeConfig) {
	slices.SortFunc(ns, func(a, b NodeConfig) int { return strings.Compare(a.ID, b.ID) })
}

// Settings is the whole <clusters> section.
type Settings struct {
	// MyID is <clusters my_id>, lowercase; empty when absent.
	MyID     string
	Clusters []Config
}

// ReadConfig reads and validates the <clusters> section: unknown elements
// or attributes, bad values, duplicate cluster names or ports are errors
// naming file and line. An absent section gives empty Settings.
func ReadConfig(c *config.Config) (Settings, error) {
	v, err := c.Section(Section)
	if err != nil {
		return Settings{}, fmt.Errorf("cluster: %w", err)
	}
	var s Settings
	if !v.Node().Valid() {
		return s, nil
	}
	s.MyID = strings.ToLower(v.String("@my_id"))
	names := map[string]config.Pos{}
	ports := map[int]string{}
	for _, cv := range v.Children("cluster") {
		cc, err := fromValues(cv)
		if err != nil {
			return Settings{}, fmt.Errorf("cluster: %w", err)
		}
		pos := cv.Node().Pos()
		if first, dup := names[cc.Name]; dup {
			return Settings{}, fmt.Errorf("cluster: %w", &config.Error{Pos: pos, Msg: fmt.Sprintf("cluster %q is declared twice (first at %s)", cc.Name, first), Err: config.ErrInvalid})
		}
		names[cc.Name] = pos
		if other, dup := ports[cc.Port]; dup {
			return Settings{}, fmt.Errorf("cluster: %w", &config.Error{Pos: pos, Msg: fmt.Sprintf("cluster %q uses port %d, as cluster %q does", cc.Name, cc.Port, other), Err: config.ErrInvalid})
		}
		ports[cc.Port] = cc.Name
		s.Clusters = append(s.Clusters, cc)
	}
	return s, nil
}

// ParseBody parses the body of POST /cluster: one <cluster> element as in
// the configuration. Includes, backing stores and environment references
// are refused: the body comes from the network.
func ParseBody(body []byte) (Config, error) {
	if len(body) > maxBody {
		return Config{}, fmt.Errorf("cluster: body: larger than %d bytes", maxBody)
	}
	if err := refuseFileRefs(body); err != nil {
		return Config{}, fmt.Errorf("cluster: body: %w", err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	doc, err := config.Parse("body", body, config.Options{Env: noEnv, NoWriteBack: true, Sections: []config.Section{bodySection}})
	if err != nil {
		return Config{}, fmt.Errorf("cluster: body: %w", err)
	}
	v, err := doc.Section(bodySection)
	if err != nil {
		return Config{}, fmt.Errorf("cluster: body: %w", err)
	}
	c, err := fromValues(v)
	if err != nil {
		return Config{}, fmt.Errorf("cluster: body: %w", err)
	}
	return c, nil
}

// maxBody bounds the body of POST /cluster.
const maxBody = 1 << 20

// refuseFileRefs scans the raw body before the configuration parser
// sees it, so that nothing in it makes the process read a file.
func refuseFileRefs(body []byte) error {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil {
		return fmt.Errorf("%w: %v", config.ErrSyntax, err)
	}
	var walk func(e *etree.Element) error
	walk = func(e *etree.Element) error {
		if e.Tag == "include" {
			return fmt.Errorf("%w: <include> is not allowed here", config.ErrInvalid)
		}
		for _, a := range []string{"backingstore", "require_env"} {
			if e.SelectAttr(a) != nil {
				return fmt.Errorf("%w: attribute %q is not allowed here", config.ErrInvalid, a)
			}
		}
		for _, ch := range e.ChildElements() {
			if err := walk(ch); err != nil {
				return err
			}
		}
		return nil
	}
	if doc.Root() == nil {
		return fmt.Errorf("%w: no element", config.ErrSyntax)
	}
	return walk(doc.Root())
}
