package config

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"
)

// Node is a read-only view of one element of a Config. It stays valid
// across changes, but after a Reload it refers to the replaced tree; look it
// up again after a reload. Reads take the Config's read lock.
type Node struct {
	c *Config
	t *tree
	e *etree.Element
}

// inheritSuffix, as the last step of a getter path, reads an attribute from
// the element or its nearest ancestor that has it.
const inheritSuffix = "ancestor-or-self::node()/@"

// paths caches compiled path expressions; paths come from code and form a
// small, fixed set. The cache stops growing at maxCachedPaths.
var (
	paths          sync.Map // string -> etree.Path
	pathsCount     atomic.Int64
	maxCachedPaths = int64(4096)
)

func compilePath(p string) (etree.Path, error) {
	if v, ok := paths.Load(p); ok {
		return v.(etree.Path), nil
	}
	cp, err := etree.CompilePath(p)
	if err != nil {
		return etree.Path{}, fmt.Errorf("%w: %q: %w", ErrPath, p, err)
	}
	if pathsCount.Add(1) <= maxCachedPaths {
		paths.Store(p, cp)
	}
	return cp, nil
}

// splitAttr splits a getter path into the element path and the attribute
// step: "a/b/@x" -> ("a/b", "x", false); "a/ancestor-or-self::node()/@x"
// -> ("a", "x", true); "a/b" -> ("a/b", "", false).
func splitAttr(p string) (elem, attr string, inherit bool) {
	if strings.HasPrefix(p, inheritSuffix) {
		return ".", p[len(inheritSuffix):], true
	}
	if i := strings.LastIndex(p, "/"+inheritSuffix); i >= 0 {
		head := p[:i]
		if head == "" {
			head = "/"
		}
		return head, p[i+1+len(inheritSuffix):], true
	}
	i := strings.LastIndex(p, "/")
	last := p[i+1:]
	head := p[:max(i, 0)]
	if i == 0 {
		head = "/"
	}
	if strings.HasPrefix(last, "@") {
		return orDot(head), last[1:], false
	}
	return p, "", false
}

func orDot(p string) string {
	if p == "" {
		return "."
	}
	return p
}

// active reports whether e counts: neither it nor an ancestor has a
// require_env that the environment fails. A malformed require_env makes
// the element inactive (Validate reports it).
func (c *Config) active(e *etree.Element) bool {
	for x := e; x != nil; x = x.Parent() {
		for _, a := range x.Attr {
			if a.Key == attrRequireEnv && a.Space == "" {
				if ok, err := requireEnv(a.Value, c.env); err != nil || !ok {
					return false
				}
			}
		}
	}
	return true
}

// findLocked returns the active elements that path selects from base (the
// document for absolute paths).
func (c *Config) findLocked(t *tree, base *etree.Element, path string, first bool) ([]*etree.Element, error) {
	cp, err := compilePath(path)
	if err != nil {
		return nil, err
	}
	var out []*etree.Element
	for e := range base.FindElementsPathSeq(cp) {
		if c.active(e) {
			out = append(out, e)
			if first {
				break
			}
		}
	}
	return out, nil
}

// Root returns the root element.
func (c *Config) Root() Node {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return Node{c: c, t: c.t, e: c.t.doc.Root()}
}

func (c *Config) docNode() Node {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return Node{c: c, t: c.t, e: &c.t.doc.Element}
}

// Find returns the first active element that path selects (etree path
// syntax; absolute paths start at the document, as in "/app/logs").
func (c *Config) Find(path string) (Node, bool, error) { return c.docNode().Find(path) }

// FindAll returns every active element that path selects.
func (c *Config) FindAll(path string) ([]Node, error) { return c.docNode().FindAll(path) }

// String returns the value at path, or def when the path selects nothing.
// See Node.String for the path forms.
func (c *Config) String(path, def string) (string, error) { return c.docNode().String(path, def) }

// Bool returns the boolean at path, or def.
func (c *Config) Bool(path string, def bool) (bool, error) { return c.docNode().Bool(path, def) }

// Int returns the integer at path, or def.
func (c *Config) Int(path string, def int64) (int64, error) { return c.docNode().Int(path, def) }

// Float returns the number at path, or def.
func (c *Config) Float(path string, def float64) (float64, error) {
	return c.docNode().Float(path, def)
}

// Duration returns the duration at path ("250ms", "5s"), or def.
func (c *Config) Duration(path string, def time.Duration) (time.Duration, error) {
	return c.docNode().Duration(path, def)
}

// Size returns the byte size at path ("64MiB"), or def.
func (c *Config) Size(path string, def int64) (int64, error) { return c.docNode().Size(path, def) }

// Hash returns the merged <config> key/values for the element at path.
// See Node.Hash.
func (c *Config) Hash(path string) (map[string]string, error) {
	n, ok, err := c.Find(path)
	if err != nil || !ok {
		return map[string]string{}, err
	}
	return n.Hash()
}

// Valid reports whether the node refers to an element.
func (n Node) Valid() bool { return n.e != nil }

// Tag returns the element name.
func (n Node) Tag() string {
	if n.e == nil {
		return ""
	}
	return n.e.FullTag()
}

// Pos returns the file and line the element was read from.
func (n Node) Pos() Pos {
	if n.e == nil {
		return Pos{}
	}
	n.c.mu.RLock()
	defer n.c.mu.RUnlock()
	return n.t.posOf(n.e)
}

// Path returns a path that selects this element from the document.
func (n Node) Path() string {
	if n.e == nil {
		return ""
	}
	n.c.mu.RLock()
	defer n.c.mu.RUnlock()
	return elemPath(n.e)
}

// Attr returns the element's own attribute, interpolated.
func (n Node) Attr(name string) (string, bool) {
	if n.e == nil {
		return "", false
	}
	n.c.mu.RLock()
	defer n.c.mu.RUnlock()
	if a := n.e.SelectAttr(name); a != nil {
		return interpolate(a.Value, n.c.env), true
	}
	return "", false
}

// InheritedAttr returns the attribute from the element or its nearest
// ancestor that has it (ancestor-or-self), interpolated.
func (n Node) InheritedAttr(name string) (string, bool) {
	if n.e == nil {
		return "", false
	}
	n.c.mu.RLock()
	defer n.c.mu.RUnlock()
	v, _, ok := n.c.inherited(n.e, name)
	return v, ok
}

func (c *Config) inherited(e *etree.Element, name string) (string, *etree.Element, bool) {
	for x := e; x != nil; x = x.Parent() {
		if a := x.SelectAttr(name); a != nil {
			return interpolate(a.Value, c.env), x, true
		}
	}
	return "", nil, false
}

// Text returns the element's text, interpolated and trimmed of surrounding
// whitespace.
func (n Node) Text() string {
	if n.e == nil {
		return ""
	}
	n.c.mu.RLock()
	defer n.c.mu.RUnlock()
	return interpolate(strings.TrimSpace(n.e.Text()), n.c.env)
}

// Children returns the active child elements, in document order.
func (n Node) Children() []Node {
	if n.e == nil {
		return nil
	}
	n.c.mu.RLock()
	defer n.c.mu.RUnlock()
	var out []Node
	for _, ch := range n.e.ChildElements() {
		if n.c.active(ch) {
			out = append(out, Node{c: n.c, t: n.t, e: ch})
		}
	}
	return out
}

// Find returns the first active element that path selects from n.
func (n Node) Find(path string) (Node, bool, error) {
	if n.e == nil {
		return Node{}, false, nil
	}
	n.c.mu.RLock()
	defer n.c.mu.RUnlock()
	es, err := n.c.findLocked(n.t, n.e, path, true)
	if err != nil || len(es) == 0 {
		return Node{}, false, err
	}
	return Node{c: n.c, t: n.t, e: es[0]}, true, nil
}

// FindAll returns every active element that path selects from n.
func (n Node) FindAll(path string) ([]Node, error) {
	if n.e == nil {
		return nil, nil
	}
	n.c.mu.RLock()
	defer n.c.mu.RUnlock()
	es, err := n.c.findLocked(n.t, n.e, path, false)
	if err != nil {
		return nil, err
	}
	out := make([]Node, len(es))
	for i, e := range es {
		out[i] = Node{c: n.c, t: n.t, e: e}
	}
	return out, nil
}

// lookup finds the raw value at path: the text of the selected element,
// or with a last step "@name" its attribute, or with a last step
// "ancestor-or-self::node()/@name" the attribute of the element or its
// nearest ancestor. pos is where the value was read.
func (n Node) lookup(path string) (val string, pos Pos, ok bool, err error) {
	if n.e == nil {
		return "", Pos{}, false, nil
	}
	elemPath, attr, inherit := splitAttr(path)
	n.c.mu.RLock()
	defer n.c.mu.RUnlock()
	var e *etree.Element
	if elemPath == "." {
		e = n.e
	} else {
		es, err := n.c.findLocked(n.t, n.e, elemPath, true)
		if err != nil || len(es) == 0 {
			return "", Pos{}, false, err
		}
		e = es[0]
	}
	switch {
	case attr == "":
		return interpolate(strings.TrimSpace(e.Text()), n.c.env), n.t.posOf(e), true, nil
	case inherit:
		v, owner, ok := n.c.inherited(e, attr)
		if !ok {
			return "", Pos{}, false, nil
		}
		return v, n.t.attrPos(owner, attr), true, nil
	default:
		a := e.SelectAttr(attr)
		if a == nil {
			return "", Pos{}, false, nil
		}
		return interpolate(a.Value, n.c.env), n.t.attrPos(e, attr), true, nil
	}
}

// String returns the value at path relative to n, or def when the path
// selects nothing. Path forms (etree path syntax, see
// github.com/beevik/etree):
//
//	a/b                              text of the first active <b> in <a>
//	a/b/@name                        attribute name of that element
//	a/b/ancestor-or-self::node()/@x  attribute x of <b> or its nearest ancestor
//	@name                            attribute of n itself
//
// Values are {{ENV:...}} interpolated.
func (n Node) String(path, def string) (string, error) {
	v, _, ok, err := n.lookup(path)
	if err != nil || !ok {
		return def, err
	}
	return v, nil
}

func typed[T any](n Node, path string, def T, parse func(string) (T, error)) (T, error) {
	v, pos, ok, err := n.lookup(path)
	if err != nil || !ok {
		return def, err
	}
	x, err := parse(v)
	if err != nil {
		return def, errorf(pos, ErrInvalid, "%s: %v", path, err)
	}
	return x, nil
}

// Bool returns the boolean at path relative to n, or def.
func (n Node) Bool(path string, def bool) (bool, error) { return typed(n, path, def, ParseBool) }

// Int returns the integer at path relative to n, or def.
func (n Node) Int(path string, def int64) (int64, error) { return typed(n, path, def, ParseInt) }

// Float returns the number at path relative to n, or def.
func (n Node) Float(path string, def float64) (float64, error) {
	return typed(n, path, def, ParseFloat)
}

// Duration returns the duration at path relative to n, or def.
func (n Node) Duration(path string, def time.Duration) (time.Duration, error) {
	return typed(n, path, def, ParseDuration)
}

// Size returns the byte size at path relative to n, or def.
func (n Node) Size(path string, def int64) (int64, error) { return typed(n, path, def, ParseSize) }

// Hash returns the key/values that <config> blocks give this element:
// the <config> children of its top-most ancestor first, then of each
// element down to n itself, later values replacing earlier ones. A
// <config inherit="ID"> first takes the hash of the element whose id
// attribute is ID (searched in the whole document), then its own keys.
// Keys are the child element names; values are their interpolated text.
func (n Node) Hash() (map[string]string, error) {
	out := map[string]string{}
	if n.e == nil {
		return out, nil
	}
	n.c.mu.RLock()
	defer n.c.mu.RUnlock()
	st := &hashState{memo: map[*etree.Element]map[string]string{}, busy: map[*etree.Element]bool{}}
	m, err := n.c.hashOf(n.t, n.e, st)
	if err != nil {
		return out, err
	}
	for k, v := range m {
		out[k] = v
	}
	return out, nil
}

// hashState carries one Hash computation: results per element (so an
// element inherited many times is computed once, keeping the work linear),
// the elements and configs being computed (cycle detection), and the id
// index, built on first use.
type hashState struct {
	memo map[*etree.Element]map[string]string
	busy map[*etree.Element]bool
	ids  map[string]*etree.Element
}

func (c *Config) hashOf(t *tree, e *etree.Element, st *hashState) (map[string]string, error) {
	if m, ok := st.memo[e]; ok {
		return m, nil
	}
	if st.busy[e] {
		return nil, errorf(t.posOf(e), ErrInvalid, "config inherit cycle through <%s>", e.FullTag())
	}
	st.busy[e] = true
	defer delete(st.busy, e)
	out := map[string]string{}
	var chain []*etree.Element
	for x := e; x != nil && x != &t.doc.Element; x = x.Parent() {
		chain = append(chain, x)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		x := chain[i]
		if !c.active(x) {
			break
		}
		if x.Tag == tagConfig {
			if err := c.mergeConfig(t, x, out, st); err != nil {
				return nil, err
			}
			continue
		}
		for _, ch := range x.ChildElements() {
			if ch.Tag == tagConfig && c.active(ch) {
				if err := c.mergeConfig(t, ch, out, st); err != nil {
					return nil, err
				}
			}
		}
	}
	st.memo[e] = out
	return out, nil
}

// mergeConfig merges one <config> element: its inherit target, then its
// own keys.
func (c *Config) mergeConfig(t *tree, cfg *etree.Element, out map[string]string, st *hashState) error {
	if id := cfg.SelectAttrValue(attrInherit, ""); id != "" {
		if st.ids == nil {
			st.ids = c.idIndex(t)
		}
		target := st.ids[id]
		if target == nil {
			return errorf(t.attrPos(cfg, attrInherit), ErrInvalid, "inherit=%q: no element has that id", id)
		}
		if st.busy[cfg] {
			return errorf(t.attrPos(cfg, attrInherit), ErrInvalid, "inherit=%q: cycle", id)
		}
		st.busy[cfg] = true
		m, err := c.hashOf(t, target, st)
		delete(st.busy, cfg)
		if err != nil {
			return err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	for _, kv := range cfg.ChildElements() {
		if kv.Tag == tagConfig || !c.active(kv) {
			continue
		}
		out[kv.Tag] = interpolate(strings.TrimSpace(kv.Text()), c.env)
	}
	return nil
}

// idIndex maps id attributes to the first active element that has each.
func (c *Config) idIndex(t *tree) map[string]*etree.Element {
	ids := map[string]*etree.Element{}
	var walk func(*etree.Element)
	walk = func(e *etree.Element) {
		if id := e.SelectAttrValue(attrID, ""); id != "" {
			if _, dup := ids[id]; !dup && c.active(e) {
				ids[id] = e
			}
		}
		for _, ch := range e.ChildElements() {
			walk(ch)
		}
	}
	walk(t.doc.Root())
	return ids
}

// elemPath renders a path that selects e: tags from the root, with a
// 1-based [n] where siblings share the tag.
func elemPath(e *etree.Element) string {
	var parts []string
	for x := e; x != nil && x.Parent() != nil; x = x.Parent() {
		p := x.Parent()
		step := x.FullTag()
		if p.Parent() != nil || p.Tag != "" { // not the document
			n, idx := 0, 0
			for _, s := range p.ChildElements() {
				if s.FullTag() == step {
					n++
					if s == x {
						idx = n
					}
				}
			}
			if n > 1 {
				step = fmt.Sprintf("%s[%d]", step, idx)
			}
		}
		parts = append(parts, step)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	return b.String()
}

// Merged returns a deep copy of the element for printing ("config show"):
// every <include> element is replaced by the content it included, and
// whitespace-only text is dropped so the copy can be re-indented.
func (n Node) Merged() *etree.Element { return n.printable(true) }

// MergedRaw is like Merged but keeps <include> elements holding their
// content.
func (n Node) MergedRaw() *etree.Element { return n.printable(false) }

func (n Node) printable(splice bool) *etree.Element {
	if n.e == nil {
		return nil
	}
	n.c.mu.RLock()
	defer n.c.mu.RUnlock()
	out := etree.NewElement(n.e.FullTag())
	for _, a := range n.e.Attr {
		out.CreateAttr(a.FullKey(), a.Value)
	}
	copyPrintable(out, n.e, splice)
	return out
}

func copyPrintable(dst, src *etree.Element, splice bool) {
	for _, tok := range src.Child {
		switch x := tok.(type) {
		case *etree.Element:
			if splice && x.Tag == tagInclude && x.Space == "" {
				copyPrintable(dst, x, splice)
				continue
			}
			e := dst.CreateElement(x.FullTag())
			for _, a := range x.Attr {
				e.CreateAttr(a.FullKey(), a.Value)
			}
			copyPrintable(e, x, splice)
		case *etree.CharData:
			if !isWhitespace(x.Data) {
				dst.AddChild(etree.NewText(x.Data))
			}
		case *etree.Comment:
			dst.AddChild(etree.NewComment(x.Data))
		}
	}
}
