package config

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
)

// Section declares the part of the configuration a component reads: the
// element at Path, its attributes and its child elements. Inside a
// declared section an unknown or mistyped element or attribute is an
// error; the same declaration renders the reference documentation
// (Markdown) and supplies defaults to Values.
type Section struct {
	// Path locates the section: tags separated by '/'. A relative path
	// ("watchdog", "eventer/pools") starts below the root element,
	// whatever the application named it; an absolute one ("/app/logs")
	// names the root too. <include> elements are looked through, so a
	// section may live in an included file.
	Path string
	// Doc describes the section (one paragraph of Markdown).
	Doc string
	// Required makes a missing section an error.
	Required bool
	// Repeated allows the section element to appear more than once.
	Repeated bool
	Element
}

// Element declares a child element.
type Element struct {
	Name string
	// Type of the element's text; TypeNone for an element that holds only
	// attributes and children.
	Type Type
	// Default text, used by Values when the element is absent.
	Default string
	// Enum lists the allowed values of a TypeEnum.
	Enum []string
	// Pattern, a regular expression the whole value must match.
	Pattern  string
	Doc      string
	Required bool
	Repeated bool
	Attrs    []Attr
	Children []Element
	// Open allows undeclared attributes and children (free-form content,
	// such as key/value <config> blocks).
	Open bool
}

// Attr declares an attribute.
type Attr struct {
	Name     string
	Type     Type
	Default  string
	Enum     []string
	Pattern  string
	Doc      string
	Required bool
}

// reservedAttrs are interpreted by this package and allowed everywhere.
var reservedAttrs = map[string]bool{attrRequireEnv: true, attrBackingStore: true, attrID: true}

// checkValue validates one value against a type, enum and pattern.
func checkValue(v string, typ Type, enum []string, pattern string) error {
	var err error
	switch typ {
	case TypeBool:
		_, err = ParseBool(v)
	case TypeInt:
		_, err = ParseInt(v)
	case TypeFloat:
		_, err = ParseFloat(v)
	case TypeDuration:
		_, err = ParseDuration(v)
	case TypeSize:
		_, err = ParseSize(v)
	case TypeEnum:
		if !slices.Contains(enum, v) {
			err = fmt.Errorf("%q is not one of %s", v, strings.Join(enum, ", "))
		}
	}
	if err != nil {
		return err
	}
	if pattern != "" {
		re, rerr := compileRegexp("^(?:" + pattern + ")$")
		if rerr != nil {
			return rerr
		}
		if !re.MatchString(v) {
			return fmt.Errorf("%q does not match %s", v, pattern)
		}
	}
	return nil
}

// check validates the declaration itself.
func (s Section) check() error {
	if strings.Trim(s.Path, "/") == "" {
		return errors.New("section with an empty path")
	}
	var walk func(where string, e Element) error
	walk = func(where string, e Element) error {
		seen := map[string]bool{}
		for _, a := range e.Attrs {
			if a.Name == "" || seen["@"+a.Name] {
				return fmt.Errorf("%s: empty or duplicate attribute %q", where, a.Name)
			}
			seen["@"+a.Name] = true
			if err := checkDecl(a.Type, a.Enum, a.Pattern, a.Default); err != nil {
				return fmt.Errorf("%s/@%s: %w", where, a.Name, err)
			}
		}
		for _, c := range e.Children {
			if c.Name == "" || seen[c.Name] {
				return fmt.Errorf("%s: empty or duplicate element %q", where, c.Name)
			}
			seen[c.Name] = true
			if err := checkDecl(c.Type, c.Enum, c.Pattern, c.Default); err != nil {
				return fmt.Errorf("%s/%s: %w", where, c.Name, err)
			}
			if err := walk(where+"/"+c.Name, c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(s.Path, s.Element)
}

func checkDecl(typ Type, enum []string, pattern, def string) error {
	if typ < TypeNone || typ > TypeEnum {
		return fmt.Errorf("unknown type %d", typ)
	}
	if typ == TypeEnum && len(enum) == 0 {
		return errors.New("enum without values")
	}
	if pattern != "" {
		if _, err := compileRegexp("^(?:" + pattern + ")$"); err != nil {
			return err
		}
	}
	if def != "" {
		if err := checkValue(def, typ, enum, pattern); err != nil {
			return fmt.Errorf("default: %w", err)
		}
	}
	return nil
}

var (
	registryMu sync.Mutex
	registry   = map[string]Section{}
)

// Register declares a section for every Config check and for the reference
// documentation; components call it from an init function. It panics on a
// duplicate path or an invalid declaration: both are programming errors
// caught by any test.
func Register(s Section) {
	if err := s.check(); err != nil {
		panic("config: register: " + err.Error())
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[s.Path]; dup {
		panic("config: register: duplicate section " + s.Path)
	}
	registry[s.Path] = s
}

// Registered returns every registered section, sorted by path.
func Registered() []Section {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]Section, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Validate checks the configuration against sections and checks every
// require_env expression in the document. It returns nil or all problems
// joined (see Problems), each an *Error reading "file:line: message".
func (c *Config) Validate(sections ...Section) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.validateTree(c.t, sections)
}

func (c *Config) validateTree(t *tree, sections []Section) error {
	v := &validator{c: c, t: t}
	v.checkEnv(t.doc.Root())
	for _, s := range sections {
		if err := s.check(); err != nil {
			v.errs = append(v.errs, fmt.Errorf("config: section declaration: %w", err))
			continue
		}
		found := c.instances(t, s.Path)
		if len(found) == 0 && s.Required {
			v.add(t.posOf(t.doc.Root()), "missing required section %s", s.Path)
		}
		if len(found) > 1 && !s.Repeated {
			v.add(t.posOf(found[1]), "section %s appears more than once (first at %s)", s.Path, t.posOf(found[0]))
		}
		for _, e := range found {
			v.element(e, s.Element)
		}
	}
	sort.SliceStable(v.errs, func(i, j int) bool {
		var a, b *Error
		if !errors.As(v.errs[i], &a) || !errors.As(v.errs[j], &b) {
			return false
		}
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		return a.Pos.Line < b.Pos.Line
	})
	return errors.Join(v.errs...)
}

type validator struct {
	c    *Config
	t    *tree
	errs []error
}

func (v *validator) add(pos Pos, format string, args ...any) {
	v.errs = append(v.errs, errorf(pos, ErrInvalid, format, args...))
}

func (v *validator) checkEnv(e *etree.Element) {
	if a := e.SelectAttr(attrRequireEnv); a != nil {
		if _, err := requireEnv(a.Value, v.c.env); err != nil {
			v.add(v.t.attrPos(e, attrRequireEnv), "%v", err)
		}
	}
	for _, ch := range e.ChildElements() {
		v.checkEnv(ch)
	}
}

func (v *validator) element(e *etree.Element, spec Element) {
	pos := v.t.posOf(e)
	tag := e.FullTag()
	if !spec.Open {
		for _, a := range e.Attr {
			key := a.FullKey()
			if reservedAttrs[key] || a.Space == "xmlns" || key == "xmlns" {
				continue
			}
			if !slices.ContainsFunc(spec.Attrs, func(d Attr) bool { return d.Name == key }) {
				v.add(v.t.attrPos(e, key), "unknown attribute %q on <%s>%s", key, tag, knownAttrs(spec))
			}
		}
	}
	for _, d := range spec.Attrs {
		a := e.SelectAttr(d.Name)
		if a == nil {
			if d.Required {
				v.add(pos, "<%s> lacks required attribute %q", tag, d.Name)
			}
			continue
		}
		if err := checkValue(interpolate(a.Value, v.c.env), d.Type, d.Enum, d.Pattern); err != nil {
			v.add(v.t.attrPos(e, d.Name), "attribute %q of <%s>: %v", d.Name, tag, err)
		}
	}
	text := strings.TrimSpace(e.Text())
	if spec.Type != TypeNone {
		if err := checkValue(interpolate(text, v.c.env), spec.Type, spec.Enum, spec.Pattern); err != nil {
			v.add(pos, "<%s>: %v", tag, err)
		}
	}
	if spec.Open {
		return
	}
	if spec.Type == TypeNone && hasText(e) {
		v.add(pos, "<%s> takes no text", tag)
	}
	counts := map[string]int{}
	for _, ch := range v.c.children(e) {
		name := ch.FullTag()
		i := slices.IndexFunc(spec.Children, func(d Element) bool { return d.Name == name })
		if i < 0 {
			v.add(v.t.posOf(ch), "unknown element <%s> in <%s>%s", name, tag, knownChildren(spec))
			continue
		}
		counts[name]++
		d := spec.Children[i]
		if counts[name] == 2 && !d.Repeated {
			v.add(v.t.posOf(ch), "<%s> may appear only once in <%s>", name, tag)
		}
		v.element(ch, d)
	}
	for _, d := range spec.Children {
		if d.Required && counts[d.Name] == 0 {
			v.add(pos, "<%s> lacks required element <%s>", tag, d.Name)
		}
	}
}

// hasText reports whether e has non-whitespace text of its own (outside
// child elements).
func hasText(e *etree.Element) bool {
	for _, tok := range e.Child {
		if cd, ok := tok.(*etree.CharData); ok && !isWhitespace(cd.Data) {
			return true
		}
	}
	return false
}

func knownAttrs(spec Element) string {
	if len(spec.Attrs) == 0 {
		return " (it takes none)"
	}
	names := make([]string, len(spec.Attrs))
	for i, a := range spec.Attrs {
		names[i] = a.Name
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}

func knownChildren(spec Element) string {
	if len(spec.Children) == 0 {
		return " (it takes none)"
	}
	names := make([]string, len(spec.Children))
	for i, c := range spec.Children {
		names[i] = c.Name
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}

// children returns the active child elements of e, looking through
// <include> elements.
func (c *Config) children(e *etree.Element) []*etree.Element {
	var out []*etree.Element
	for _, ch := range e.ChildElements() {
		if !c.active(ch) {
			continue
		}
		if ch.Tag == tagInclude && ch.Space == "" {
			out = append(out, c.children(ch)...)
			continue
		}
		out = append(out, ch)
	}
	return out
}

// instances returns the active elements a section path selects.
func (c *Config) instances(t *tree, path string) []*etree.Element {
	root := t.doc.Root()
	if !c.active(root) {
		return nil
	}
	steps := strings.Split(strings.Trim(path, "/"), "/")
	if strings.HasPrefix(path, "/") {
		if steps[0] != root.FullTag() {
			return nil
		}
		steps = steps[1:]
	}
	cur := []*etree.Element{root}
	for _, step := range steps {
		var next []*etree.Element
		for _, e := range cur {
			for _, ch := range c.children(e) {
				if ch.FullTag() == step {
					next = append(next, ch)
				}
			}
		}
		cur = next
	}
	return cur
}

// Values reads a declared section: getters take a name as declared
// ("@attr", "child" or "child/@attr") and fall back to the declared
// default. Asking for an undeclared name panics: it is a programming error.
type Values struct {
	n    Node
	spec Element
	path string
}

// Section validates s and returns its first instance, or, when the section
// is absent, Values that report the declared defaults.
func (c *Config) Section(s Section) (Values, error) {
	all, err := c.SectionAll(s)
	if err != nil {
		return Values{}, err
	}
	if len(all) == 0 {
		return Values{spec: s.Element, path: s.Path}, nil
	}
	return all[0], nil
}

// SectionAll validates s and returns every instance of it.
func (c *Config) SectionAll(s Section) ([]Values, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if err := c.validateTree(c.t, []Section{s}); err != nil {
		return nil, fmt.Errorf("config: section %s: %w", s.Path, err)
	}
	var out []Values
	for _, e := range c.instances(c.t, s.Path) {
		out = append(out, Values{n: Node{c: c, t: c.t, e: e}, spec: s.Element, path: s.Path})
	}
	return out, nil
}

// Node returns the element behind the values (invalid when the section
// is absent).
func (v Values) Node() Node { return v.n }

// Children returns the instances of a declared child element.
func (v Values) Children(name string) []Values {
	d := v.child(name)
	if v.n.e == nil {
		return nil
	}
	v.n.c.mu.RLock()
	defer v.n.c.mu.RUnlock()
	var out []Values
	for _, ch := range v.n.c.children(v.n.e) {
		if ch.FullTag() == name {
			out = append(out, Values{n: Node{c: v.n.c, t: v.n.t, e: ch}, spec: d, path: v.path + "/" + name})
		}
	}
	return out
}

func (v Values) child(name string) Element {
	i := slices.IndexFunc(v.spec.Children, func(d Element) bool { return d.Name == name })
	if i < 0 {
		panic(fmt.Sprintf("config: %s: element %q is not declared", v.path, name))
	}
	return v.spec.Children[i]
}

// raw returns the value for a declared name and its default.
func (v Values) raw(name string) (string, string) {
	elem, attr, _ := strings.Cut(name, "@")
	elem = strings.TrimSuffix(elem, "/")
	spec := v.spec
	if elem != "" {
		spec = v.child(elem)
	}
	def := spec.Default
	if attr != "" {
		i := slices.IndexFunc(spec.Attrs, func(a Attr) bool { return a.Name == attr })
		if i < 0 {
			panic(fmt.Sprintf("config: %s: attribute %q is not declared", v.path, name))
		}
		def = spec.Attrs[i].Default
	}
	if v.n.e == nil {
		return def, def
	}
	path := name
	if elem != "" {
		// Look through includes the way validation does.
		v.n.c.mu.RLock()
		var found *etree.Element
		for _, ch := range v.n.c.children(v.n.e) {
			if ch.FullTag() == elem {
				found = ch
				break
			}
		}
		v.n.c.mu.RUnlock()
		if found == nil {
			return def, def
		}
		n := Node{c: v.n.c, t: v.n.t, e: found}
		path = "."
		if attr != "" {
			path = "@" + attr
		}
		s, _ := n.String(path, def)
		return s, def
	}
	s, _ := v.n.String(path, def)
	return s, def
}

// String returns the value of a declared name.
func (v Values) String(name string) string { s, _ := v.raw(name); return s }

func valueOf[T any](v Values, name string, parse func(string) (T, error)) T {
	s, def := v.raw(name)
	x, err := parse(s)
	if err != nil {
		x, _ = parse(def)
	}
	return x
}

// Bool returns the boolean value of a declared name.
func (v Values) Bool(name string) bool { return valueOf(v, name, ParseBool) }

// Int returns the integer value of a declared name.
func (v Values) Int(name string) int64 { return valueOf(v, name, ParseInt) }

// Float returns the numeric value of a declared name.
func (v Values) Float(name string) float64 { return valueOf(v, name, ParseFloat) }

// Duration returns the duration value of a declared name.
func (v Values) Duration(name string) time.Duration { return valueOf(v, name, ParseDuration) }

// Size returns the byte size value of a declared name.
func (v Values) Size(name string) int64 { return valueOf(v, name, ParseSize) }
