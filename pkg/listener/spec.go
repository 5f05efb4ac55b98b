package listener

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

// Sentinel errors; every error of this package wraps one of them.
var (
	// ErrConfig: a <listener> is malformed (unknown attribute, bad port,
	// unknown type, unreadable certificate, ...). The error names the
	// file:line of the listener.
	ErrConfig = errors.New("bad listener")
	// ErrListen: a socket could not be opened.
	ErrListen = errors.New("cannot listen")
)

// Section declares <listeners> for the configuration's strict checks and
// reference. Listeners may be grouped below <listeners> in elements of
// any name (libmtev reads //listeners//listener); Parse checks each
// <listener> strictly.
var Section = config.Section{
	Path: "listeners",
	Doc:  "Listening sockets, libmtev's `<listeners>`: each `<listener type address port ssl backlog>` with a `<config>` key/value block handed to the protocol and an `<sslconfig>`; attributes, `<config>` and `<sslconfig>` are inherited from enclosing elements. See docs/http.md.",
	Element: config.Element{
		Open: true,
	},
}

func init() { config.Register(Section) }

// attrs are the attributes a <listener> (or an enclosing element, which
// passes them down) may carry.
var attrs = map[string]bool{
	"type": true, "address": true, "port": true, "ssl": true, "backlog": true,
	"name": true, "fanout": true, "fanout_pool": true, "accept_thread": true,
	"require_env": true, "id": true,
}

// sslKeys are the <sslconfig> keys understood.
var sslKeys = map[string]bool{
	"certificate_file": true, "certificate": true, "key_file": true, "key": true,
	"ca_chain": true, "ca_file": true, "layer": true, "layer_openssl_10": true, "layer_openssl_11": true,
	"alpn": true, "npn": true, "client_cert": true, "ciphers": true, "optional_no_ca": true,
}

// Spec is one configured listener.
type Spec struct {
	// Type names the protocol (a registered listener type).
	Type string
	// Address as configured: "*", "inet:*", "inet6:*", an IP literal, or
	// an absolute unix socket path.
	Address string
	// Port (0 for unix sockets).
	Port int
	// Backlog of the listen socket (libmtev's default 5).
	Backlog int
	// Name, optional: the socket-activation name (LISTEN_FDNAMES) that
	// provides the socket.
	Name string
	// Config is the merged <config> hash.
	Config map[string]string
	// SSL is the merged <sslconfig> hash, when ssl is on.
	SSL map[string]string
	// TLS is built from SSL; nil without ssl.
	TLS *TLS
	// Pos is where the <listener> is.
	Pos config.Pos
	// Router serves HTTP for the HTTP types; the Set fills it in before
	// calling a type's factory.
	Router *rest.Router
}

// Network and address for net.Listen.
func (s *Spec) Network() (network, address string) {
	switch {
	case strings.HasPrefix(s.Address, "/"):
		return "unix", s.Address
	case s.Address == "*" || s.Address == "inet:*" || s.Address == "":
		return "tcp4", "0.0.0.0:" + strconv.Itoa(s.Port)
	case s.Address == "inet6:*":
		return "tcp6", "[::]:" + strconv.Itoa(s.Port)
	}
	a, _ := netip.ParseAddr(strings.TrimPrefix(strings.TrimPrefix(s.Address, "inet:"), "inet6:"))
	if a.Is4() {
		return "tcp4", netip.AddrPortFrom(a, uint16(s.Port)).String()
	}
	return "tcp6", netip.AddrPortFrom(a, uint16(s.Port)).String()
}

// Key identifies a listener across reloads: type, address and port.
func (s *Spec) Key() string {
	return s.Type + "@" + s.Address + ":" + strconv.Itoa(s.Port)
}

func (s *Spec) String() string { return s.Key() }

// Parse reads every //listeners//listener of c. Each problem is an error
// naming its file:line; all are returned joined. Types are checked
// against the registry.
func Parse(c *config.Config) ([]*Spec, error) {
	var specs []*Spec
	var errs []error
	var walk func(n config.Node, in bool, ssl []config.Node)
	walk = func(n config.Node, in bool, ssl []config.Node) {
		kids := n.Children()
		for _, k := range kids {
			if k.Tag() == "sslconfig" {
				ssl = append(ssl[:len(ssl):len(ssl)], k)
			}
		}
		for _, k := range kids {
			switch {
			case k.Tag() == "sslconfig" || k.Tag() == "config":
			case in && k.Tag() == "listener":
				s, err := parseOne(k, ssl)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				specs = append(specs, s)
			default:
				walk(k, in || k.Tag() == "listeners", ssl)
			}
		}
	}
	walk(c.Root(), false, nil)
	seen := map[string]config.Pos{}
	for _, s := range specs {
		if p, ok := seen[s.Key()]; ok {
			errs = append(errs, fmt.Errorf("%s: listener: %w: %s is also configured at %s", s.Pos, ErrConfig, s.Key(), p))
		}
		seen[s.Key()] = s.Pos
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return specs, nil
}

func parseOne(n config.Node, sslNodes []config.Node) (*Spec, error) {
	pos := n.Pos()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: listener: %w: %s", pos, ErrConfig, fmt.Sprintf(format, args...))
	}
	el := n.Merged()
	var unknown []string
	for _, a := range el.Attr {
		if !attrs[a.FullKey()] {
			unknown = append(unknown, a.FullKey())
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, bad("unknown attribute %s (type, address, port, ssl, backlog, name)", strings.Join(unknown, ", "))
	}
	for _, ch := range n.Children() {
		if t := ch.Tag(); t != "config" && t != "sslconfig" {
			return nil, bad("unknown element <%s> (config, sslconfig)", t)
		}
	}
	get := func(name string) string { v, _ := n.InheritedAttr(name); return strings.TrimSpace(v) }
	s := &Spec{Pos: pos, Type: get("type"), Address: get("address"), Name: get("name"), Backlog: 5}
	if s.Type == "" {
		return nil, bad("no type")
	}
	if _, ok := lookup(s.Type); !ok {
		return nil, bad("unknown type %q (registered: %s)", s.Type, strings.Join(Types(), ", "))
	}
	if s.Address == "" {
		s.Address = "*"
	}
	if !strings.HasPrefix(s.Address, "/") {
		switch s.Address {
		case "*", "inet:*", "inet6:*":
		default:
			lit := strings.TrimPrefix(strings.TrimPrefix(s.Address, "inet:"), "inet6:")
			if _, err := netip.ParseAddr(lit); err != nil {
				return nil, bad("address %q is not *, an IP address or an absolute unix socket path", s.Address)
			}
		}
		p := get("port")
		if p == "" {
			return nil, bad("no port")
		}
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			// port 0 picks a free port; allowed for tests with an explicit "0"
			if !(err == nil && port == 0) {
				return nil, bad("port %q is not 1-65535", p)
			}
		}
		s.Port = port
	}
	if b := get("backlog"); b != "" {
		v, err := strconv.Atoi(b)
		if err != nil || v < 1 {
			return nil, bad("backlog %q is not a positive integer", b)
		}
		s.Backlog = v
	}
	cfg, err := n.Hash()
	if err != nil {
		return nil, bad("config: %v", err)
	}
	s.Config = cfg
	sslOn := false
	if v := get("ssl"); v != "" {
		on, err := config.ParseBool(v)
		if err != nil {
			return nil, bad("ssl: %v", err)
		}
		sslOn = on
	}
	if sslOn {
		s.SSL = map[string]string{}
		for _, sn := range sslNodes {
			for _, kv := range sn.Children() {
				s.SSL[kv.Tag()] = kv.Text()
			}
		}
		for _, ch := range n.Children() {
			if ch.Tag() == "sslconfig" {
				for _, kv := range ch.Children() {
					s.SSL[kv.Tag()] = kv.Text()
				}
			}
		}
		for k := range s.SSL {
			if !sslKeys[k] {
				return nil, bad("sslconfig: unknown key %q", k)
			}
		}
		t, err := NewTLS(s.SSL)
		if err != nil {
			return nil, bad("sslconfig: %v", err)
		}
		s.TLS = t
	}
	return s, nil
}
