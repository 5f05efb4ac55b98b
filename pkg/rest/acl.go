package rest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

// ErrACL: an <acl> or <rule> is malformed.
var ErrACL = errors.New("bad acl")

// ACL is the compiled <rest><acl> list. The first ACL whose matchers all
// match a request decides: its rules are tried in order and the first
// rule whose matchers all match allows (type="allow") or denies; when no
// rule matches, the ACL's own type decides (deny by default). When no
// ACL matches, the request is denied. An empty ACL (no <acl> element at
// all) allows everything.
//
// Differences from libmtev: libmtev ignores the ACL's type (no matching
// rule always denies) and denies everything when no ACL is configured.
type ACL struct {
	acls []aclEntry
}

type aclEntry struct {
	m     matchers
	allow bool
	rules []aclRule
}

type aclRule struct {
	m     matchers
	allow bool
}

type matchers struct {
	url, user, auth, cn *regexp.Regexp
	ip                  []netip.Prefix
	listener            map[string]*regexp.Regexp
}

// aclAttrs are the attributes an <acl> or <rule> may carry besides
// listener_<key>.
var aclAttrs = map[string]bool{"type": true, "url": true, "user": true, "auth": true, "cn": true, "ip": true, "name": true, "id": true, "require_env": true}

// ParseACL compiles the <acl> children of a <rest> node. Errors name the
// file:line of the offending element.
func ParseACL(rest config.Node) (*ACL, error) {
	a := &ACL{}
	if !rest.Valid() {
		return a, nil
	}
	var errs []error
	for _, n := range rest.Children() {
		if n.Tag() != "acl" {
			continue
		}
		e, err := parseEntry(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ae := aclEntry{m: e.m, allow: e.allow}
		for _, c := range n.Children() {
			if c.Tag() != "rule" {
				errs = append(errs, fmt.Errorf("%s: rest: %w: <%s> inside <acl> (only <rule>)", c.Pos(), ErrACL, c.Tag()))
				continue
			}
			r, err := parseEntry(c)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ae.rules = append(ae.rules, r)
		}
		a.acls = append(a.acls, ae)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return a, nil
}

func parseEntry(n config.Node) (aclRule, error) {
	var r aclRule
	el := n.Merged()
	bad := func(format string, args ...any) (aclRule, error) {
		return aclRule{}, fmt.Errorf("%s: rest: %w: <%s> %s", n.Pos(), ErrACL, n.Tag(), fmt.Sprintf(format, args...))
	}
	if el == nil {
		return bad("is empty")
	}
	for _, at := range el.Attr {
		k, v := at.FullKey(), at.Value
		if strings.HasPrefix(k, "listener_") && len(k) > len("listener_") {
			re, err := regexp.Compile(v)
			if err != nil {
				return bad("%s: %v", k, err)
			}
			if r.m.listener == nil {
				r.m.listener = map[string]*regexp.Regexp{}
			}
			r.m.listener[strings.TrimPrefix(k, "listener_")] = re
			continue
		}
		if !aclAttrs[k] {
			return bad("has unknown attribute %q (type, url, user, auth, cn, ip, listener_<key>)", k)
		}
		var err error
		switch k {
		case "type":
			switch v {
			case "allow":
				r.allow = true
			case "deny":
			default:
				return bad("type %q is not allow or deny", v)
			}
		case "url":
			r.m.url, err = regexp.Compile(v)
		case "user":
			r.m.user, err = regexp.Compile(v)
		case "auth":
			r.m.auth, err = regexp.Compile(v)
		case "cn":
			r.m.cn, err = regexp.Compile(v)
		case "ip":
			r.m.ip, err = parsePrefixes(v)
		}
		if err != nil {
			return bad("%s: %v", k, err)
		}
	}
	return r, nil
}

// parsePrefixes reads "10.0.0.0/8", "::1" or a comma list of them.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	if len(out) == 0 {
		return nil, errors.New("no address")
	}
	return out, nil
}

// SetACL replaces the router's ACL (nil: allow everything). Requests
// already routed keep the ACL they were checked with.
func (rt *Router) SetACL(a *ACL) { rt.acl.Store(a) }

func (rt *Router) aclAuth(r *http.Request) bool {
	return rt.acl.Load().Allows(r)
}

// Allows decides r.
func (a *ACL) Allows(r *http.Request) bool {
	if a == nil || len(a.acls) == 0 {
		return true
	}
	f := factsOf(r)
	for _, e := range a.acls {
		if !e.m.match(f) {
			continue
		}
		for _, rule := range e.rules {
			if rule.m.match(f) {
				return rule.allow
			}
		}
		return e.allow
	}
	return false
}

type facts struct {
	url, user, auth, cn string
	ip                  netip.Addr
	ipOK                bool
	listener            map[string]string
}

func factsOf(r *http.Request) facts {
	f := facts{url: r.URL.Path}
	if x := FromRequest(r); x != nil {
		f.user, f.auth, f.listener = x.User, x.Auth, x.Listener
	} else {
		f.listener = listenerConfig(r.Context())
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		f.cn = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			f.ip, f.ipOK = a.Unmap(), true
		}
	}
	return f
}

func (m *matchers) match(f facts) bool {
	if m.user != nil && !m.user.MatchString(f.user) {
		return false
	}
	if m.auth != nil && !m.auth.MatchString(f.auth) {
		return false
	}
	if m.cn != nil && !m.cn.MatchString(f.cn) {
		return false
	}
	if m.url != nil && !m.url.MatchString(f.url) {
		return false
	}
	if m.ip != nil {
		if !f.ipOK {
			return false // unix peers never match an ip
		}
		ok := false
		for _, p := range m.ip {
			if p.Contains(f.ip) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for k, re := range m.listener {
		v, ok := f.listener[k]
		if !ok || !re.MatchString(v) {
			return false
		}
	}
	return true
}
