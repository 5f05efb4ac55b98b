package log

import (
	"fmt"
	"sort"
	"strings"
)

// Configure applies specs as one change: every output is opened and the
// resulting graph checked for cycles before anything is changed, and on
// error nothing is. Facilities named in Outlets but not specified are
// created as by Facility. A spec for an existing facility updates its
// toggles and, when Outlets is not empty, replaces its outlets; it may not
// give a new Type to a facility that already has a different one.
func (g *Graph) Configure(specs ...Spec) (err error) {
	// Open outputs before taking the lock: opening may touch the disk.
	nodes := make([]*node, len(specs))
	defer func() {
		if err != nil {
			for _, n := range nodes {
				if n != nil {
					n.close()
				}
			}
		}
	}()
	seen := map[string]bool{}
	for i := range specs {
		s := &specs[i]
		if err := checkName(s.Name); err != nil {
			return &specError{s.Name, fmt.Errorf("log: configure: %w", err)}
		}
		if seen[s.Name] {
			return &specError{s.Name, fmt.Errorf("log: configure %q: specified twice: %w", s.Name, ErrInvalid)}
		}
		seen[s.Name] = true
		if s.Type == "" {
			continue
		}
		if existing, ok := g.Lookup(s.Name); ok && existing.hasType(s.Type) {
			continue
		}
		n, err := g.openNode(s)
		if err != nil {
			return &specError{s.Name, err}
		}
		nodes[i] = n
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return fmt.Errorf("log: configure: %w", ErrClosed)
	}
	// Plan the change on new, unregistered facilities and an outlet
	// override map; commit only once it is known to be valid.
	override := map[*Facility][]*Facility{}
	pending := map[string]*Facility{}
	var get func(name string, implicit bool) *Facility
	get = func(name string, implicit bool) *Facility {
		if f, ok := g.facs[name]; ok {
			return f
		}
		if f, ok := pending[name]; ok {
			return f
		}
		f := &Facility{g: g, name: name, enabled: true}
		f.zl = newLogger(f)
		pending[name] = f
		if i := strings.LastIndexByte(name, '/'); implicit && i > 0 {
			override[f] = []*Facility{get(name[:i], true)}
		}
		return f
	}
	for i := range specs {
		s := &specs[i]
		f := get(s.Name, s.Type == "" && len(s.Outlets) == 0)
		if nodes[i] != nil && f.node != nil {
			return &specError{s.Name, fmt.Errorf("log: configure %q: already has type %q, cannot become %q: %w",
				s.Name, f.node.typ, s.Type, ErrInvalid)}
		}
	}
	for i := range specs {
		s := &specs[i]
		if len(s.Outlets) == 0 {
			continue
		}
		outs := make([]*Facility, 0, len(s.Outlets))
		for _, o := range s.Outlets {
			if err := checkName(o); err != nil {
				return &specError{s.Name, fmt.Errorf("log: configure %q: outlet: %w", s.Name, err)}
			}
			outs = append(outs, get(o, true))
		}
		override[g.facs[s.Name]] = outs
		if f, ok := pending[s.Name]; ok {
			override[f] = outs
		}
	}
	delete(override, nil)
	// Check specs in order, then the remaining changed facilities by
	// name, so that the error names the same spec every time.
	order := make([]*Facility, 0, len(override))
	inOrder := map[*Facility]bool{}
	for i := range specs {
		f := g.facs[specs[i].Name]
		if f == nil {
			f = pending[specs[i].Name]
		}
		if _, ok := override[f]; ok && !inOrder[f] {
			order = append(order, f)
			inOrder[f] = true
		}
	}
	var rest []*Facility
	for f := range override {
		if !inOrder[f] {
			rest = append(rest, f)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].name < rest[j].name })
	for _, f := range append(order, rest...) {
		for _, o := range override[f] {
			if reaches(o, f, override) {
				return &specError{f.name, fmt.Errorf("log: configure %q: outlet %q: %w", f.name, o.name, ErrCycle)}
			}
		}
	}
	// Commit.
	for name, f := range pending {
		g.facs[name] = f
	}
	for f, outs := range override {
		f.outlets = outs
	}
	for i := range specs {
		s := &specs[i]
		f := g.facs[s.Name]
		if nodes[i] != nil {
			f.node = nodes[i]
			nodes[i] = nil
		}
		switch s.Disabled {
		case On:
			f.enabled = false
		case Off:
			f.enabled = true
		}
		switch s.Debug {
		case On:
			f.debug.Store(true)
		case Off:
			f.debug.Store(false)
		}
	}
	g.recompileLocked()
	return nil
}

// specError is a Configure error caused by the spec named name; it reads
// and unwraps as err.
type specError struct {
	name string
	err  error
}

func (e *specError) Error() string { return e.err.Error() }
func (e *specError) Unwrap() error { return e.err }

func (f *Facility) hasType(typ string) bool {
	f.g.mu.Lock()
	defer f.g.mu.Unlock()
	return f.node != nil && f.node.typ == typ
}

func (g *Graph) openNode(s *Spec) (*node, error) {
	t, ok := lookupType(s.Type)
	if !ok {
		return nil, fmt.Errorf("log: configure %q: type %q: %w", s.Name, s.Type, ErrUnknownType)
	}
	sink, err := t.Open(s, Env{Now: g.now, Stderr: g.stderr})
	if err != nil {
		return nil, fmt.Errorf("log: configure %q: %w", s.Name, err)
	}
	async := s.Mode == ModeAsync || (s.Mode == ModeDefault && t.Async)
	return newNode(s, sink, async), nil
}
