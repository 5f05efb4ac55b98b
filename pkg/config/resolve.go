package config

import (
	"fmt"
	"strings"

	"github.com/beevik/etree"
)

// Omitted is an element that a resolved view leaves out: the require_env
// at Pos (on the element itself or on an ancestor) fails.
type Omitted struct {
	Pos     Pos    // where the failing require_env attribute is
	Tag     string // the element left out
	Require string // the require_env expression
	Why     string // what the environment holds instead ("PORT is not set")
}

func (o Omitted) String() string {
	return fmt.Sprintf("%s: <%s> left out: require_env=%q: %s", o.Pos, o.Tag, o.Require, o.Why)
}

// Resolved returns a copy of n as the service reads it: includes spliced
// in, every element whose require_env fails left out (each is listed in
// omitted), attribute values and text {{ENV:...}} interpolated, and the
// require_env attributes of the elements kept removed (they have been
// applied). When n itself does not count, the error wraps ErrEnv and
// carries the file:line of the require_env that fails.
func (n Node) Resolved() (*etree.Element, []Omitted, error) {
	if n.e == nil {
		return nil, nil, nil
	}
	n.c.mu.RLock()
	defer n.c.mu.RUnlock()
	if o, ok := n.c.failing(n.t, n.e); ok {
		return nil, nil, errorf(o.Pos, ErrEnv, "<%s> needs require_env=%q: %s", n.e.FullTag(), o.Require, o.Why)
	}
	out := etree.NewElement(n.e.FullTag())
	n.c.copyResolved(n.t, out, n.e)
	return out, n.c.omittedBelow(n.t, n.e), nil
}

// Inactive lists the elements path selects that do not count, each with
// the require_env (its own or an ancestor's) that fails.
func (c *Config) Inactive(path string) ([]Omitted, error) {
	cp, err := compilePath(path)
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []Omitted
	for e := range c.t.doc.FindElementsPathSeq(cp) {
		if o, ok := c.failing(c.t, e); ok {
			o.Tag = e.FullTag()
			out = append(out, o)
		}
	}
	return out, nil
}

// copyResolved copies the active content of src into dst, interpolated.
func (c *Config) copyResolved(t *tree, dst, src *etree.Element) {
	for _, a := range src.Attr {
		if a.Key == attrRequireEnv && a.Space == "" {
			continue
		}
		dst.CreateAttr(a.FullKey(), interpolate(a.Value, c.env))
	}
	for _, tok := range src.Child {
		switch x := tok.(type) {
		case *etree.Element:
			if _, ok := c.ownFailing(t, x); ok {
				continue
			}
			if x.Tag == tagInclude && x.Space == "" {
				// Spliced: its content takes its place.
				inc := etree.NewElement(x.FullTag())
				c.copyResolved(t, inc, x)
				for _, ch := range inc.Child {
					dst.AddChild(ch)
				}
				continue
			}
			c.copyResolved(t, dst.CreateElement(x.FullTag()), x)
		case *etree.CharData:
			if !isWhitespace(x.Data) {
				dst.AddChild(etree.NewText(interpolate(x.Data, c.env)))
			}
		case *etree.Comment:
			dst.AddChild(etree.NewComment(x.Data))
		}
	}
}

// omittedBelow lists the outermost elements under e that do not count
// because of their own require_env.
func (c *Config) omittedBelow(t *tree, e *etree.Element) []Omitted {
	var out []Omitted
	for _, x := range e.ChildElements() {
		if o, ok := c.ownFailing(t, x); ok {
			o.Tag = x.FullTag()
			out = append(out, o)
			continue
		}
		out = append(out, c.omittedBelow(t, x)...)
	}
	return out
}

// failing returns the first require_env that fails on e or an ancestor,
// outermost first.
func (c *Config) failing(t *tree, e *etree.Element) (Omitted, bool) {
	var chain []*etree.Element
	for x := e; x != nil; x = x.Parent() {
		chain = append(chain, x)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		if o, ok := c.ownFailing(t, chain[i]); ok {
			o.Tag = e.FullTag()
			return o, true
		}
	}
	return Omitted{}, false
}

// ownFailing reports whether e's own require_env fails, and why. A
// malformed expression fails too (Validate reports it).
func (c *Config) ownFailing(t *tree, e *etree.Element) (Omitted, bool) {
	a := e.SelectAttr(attrRequireEnv)
	if a == nil || a.Space != "" {
		return Omitted{}, false
	}
	ok, err := requireEnv(a.Value, c.env)
	if err == nil && ok {
		return Omitted{}, false
	}
	o := Omitted{Pos: t.attrPos(e, attrRequireEnv), Tag: e.FullTag(), Require: a.Value}
	if err != nil {
		o.Why = err.Error()
	} else {
		o.Why = c.whyFails(a.Value)
	}
	return o, true
}

// whyFails says what the environment holds for a require_env expression
// that failed.
func (c *Config) whyFails(expr string) string {
	neg := strings.HasPrefix(expr, "!")
	expr = strings.TrimPrefix(expr, "!")
	i := strings.IndexAny(expr, "=~")
	name := expr
	if i >= 0 {
		name = expr[:i]
	}
	name = strings.TrimSpace(name)
	val, set := c.env(name)
	switch {
	case !set:
		return name + " is not set"
	case i < 0:
		return fmt.Sprintf("%s is set (to %q)", name, val)
	case neg:
		return fmt.Sprintf("%s is %q", name, val)
	case expr[i] == '=':
		return fmt.Sprintf("%s is %q, not %q", name, val, expr[i+1:])
	default:
		return fmt.Sprintf("%s is %q, which does not match %s", name, val, expr[i+1:])
	}
}
