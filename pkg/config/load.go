package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// Reserved attribute names, interpreted by this package on any element.
const (
	attrInclude      = "file"         // on <include>
	attrSnippet      = "snippet"      // on <include>
	attrBackingStore = "backingstore" // any element below the root
	attrRequireEnv   = "require_env"  // any element
	attrID           = "id"           // target of inherit
	attrInherit      = "inherit"      // on <config>
	tagInclude       = "include"
	tagConfig        = "config"
)

// unitKind says what kind of file a unit is written to.
type unitKind int

const (
	unitRoot    unitKind = iota // the root file: the whole document
	unitInclude                 // an included file: the children of an <include>
	unitPiece                   // one file of a backing store: one element
)

// unit is one file that write-back produces.
type unit struct {
	kind unitKind
	path string
	// elem is the document root (unitRoot), the <include> element
	// (unitInclude) or the stored element (unitPiece).
	elem *etree.Element
	// file is the file as parsed: its prolog and, for an include, the
	// root element whose tag and attributes are written back. Nil for a
	// piece created in memory.
	file    *parsed
	snippet bool
}

// store is one backingstore directory.
type store struct {
	dir  string
	elem *etree.Element
	next int // sequence number of the next piece
}

// tree is one loaded configuration: the merged document and where each
// part of it lives on disk. A tree is replaced whole by Reload.
type tree struct {
	doc    *etree.Document
	metas  map[*etree.Element]*meta
	units  map[*etree.Element]*unit // keyed by unit.elem
	stores map[*etree.Element]*store
	files  []string // every file read, in load order
	// migrate lists elements whose units must be written once after
	// load: inline children moved into a backing store, and the
	// element that held them.
	migrate []*etree.Element
}

// loader builds a tree from files.
type loader struct {
	t      *tree
	env    Environment
	active []string // files being loaded: include cycle detection
	// noFiles refuses includes and backing stores (fuzzing of untrusted
	// bytes must not read arbitrary files).
	noFiles bool
	errs    []error
}

// loadTree reads the root file at path with its includes and backing stores.
func loadTree(path string, env Environment) (*tree, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRead, path, err)
	}
	l := &loader{
		t: &tree{
			metas:  make(map[*etree.Element]*meta),
			units:  make(map[*etree.Element]*unit),
			stores: make(map[*etree.Element]*store),
		},
		env: env,
	}
	p, err := l.readFile(Pos{}, ErrRead, path, abs, false)
	if err != nil {
		return nil, err
	}
	l.t.doc = p.doc
	root := p.doc.Root()
	l.t.units[root] = &unit{kind: unitRoot, path: abs, elem: root, file: p}
	if root.SelectAttr(attrBackingStore) != nil {
		return nil, errorf(l.t.attrPos(root, attrBackingStore), ErrBackingStore, "the root element cannot have a backing store")
	}
	if err := l.expand(root, path, 0); err != nil {
		return nil, err
	}
	return l.t, nil
}

// loadBytes parses a single in-memory document; includes and backing
// stores are resolved relative to the current directory. It backs fuzzing
// and tests of the parser.
func loadBytes(name string, data []byte, env Environment, noFiles bool) (*tree, error) {
	l := &loader{
		noFiles: noFiles,
		t: &tree{
			metas:  make(map[*etree.Element]*meta),
			units:  make(map[*etree.Element]*unit),
			stores: make(map[*etree.Element]*store),
		},
		env: env,
	}
	p, err := parseXML(name, data, false, l.t.metas)
	if err != nil {
		return nil, err
	}
	l.t.doc = p.doc
	root := p.doc.Root()
	l.t.units[root] = &unit{kind: unitRoot, path: name, elem: root, file: p}
	if root.SelectAttr(attrBackingStore) != nil {
		return nil, errorf(l.t.attrPos(root, attrBackingStore), ErrBackingStore, "the root element cannot have a backing store")
	}
	l.active = []string{name}
	if err := l.expand(root, name, 0); err != nil {
		return nil, err
	}
	return l.t, nil
}

// readFile reads and parses one file. display is the name used in
// messages (as the user wrote it, joined to the including file's
// directory); abs is used for cycle detection and write-back.
func (l *loader) readFile(at Pos, kind error, display, abs string, snippet bool) (*parsed, error) {
	data, err := os.ReadFile(abs)
	if err != nil {
		why := "cannot read"
		if errors.Is(err, fs.ErrNotExist) {
			why = "no such file"
		} else if errors.Is(err, fs.ErrPermission) {
			why = "permission denied reading"
		}
		if at.File == "" {
			return nil, &Error{Pos: Pos{File: display}, Msg: why + " " + display, Err: fmt.Errorf("%w: %w", kind, err)}
		}
		return nil, &Error{Pos: at, Msg: fmt.Sprintf("%s %s", why, display), Err: fmt.Errorf("%w: %w", kind, err)}
	}
	p, err := parseXML(display, data, snippet, l.t.metas)
	if err != nil {
		return nil, err
	}
	p.path = abs
	l.t.files = append(l.t.files, abs)
	l.active = append(l.active, abs)
	return p, nil
}

// expand resolves includes and backing stores below e, which was read
// from the file named display.
func (l *loader) expand(e *etree.Element, display string, depth int) error {
	if depth > maxDepth {
		return errorf(l.t.metas[e].pos, ErrInclude, "includes nested deeper than %d", maxDepth)
	}
	// Iterate over a snapshot: handling an include adds children to it.
	for _, c := range e.ChildElements() {
		switch {
		case c.Tag == tagInclude && c.Space == "":
			if err := l.include(c, display, depth); err != nil {
				return err
			}
		case c.SelectAttr(attrBackingStore) != nil:
			if err := l.backingStore(c, display, depth); err != nil {
				return err
			}
		default:
			if err := l.expand(c, display, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *loader) include(inc *etree.Element, display string, depth int) error {
	pos := l.t.metas[inc].pos
	if l.noFiles {
		return errorf(pos, ErrInclude, "includes are not allowed here")
	}
	name := inc.SelectAttrValue(attrInclude, "")
	if name == "" {
		return errorf(pos, ErrInclude, "<include> without a file attribute")
	}
	if len(inc.ChildElements()) > 0 {
		return errorf(pos, ErrInclude, "<include file=%q> must be empty", name)
	}
	pos = l.t.attrPos(inc, attrInclude)
	name = interpolate(name, l.env)
	snippet, err := ParseBool(inc.SelectAttrValue(attrSnippet, "false"))
	if err != nil {
		return errorf(pos, ErrInclude, "snippet: %v", err)
	}
	disp, abs := resolve(display, l.active[len(l.active)-1], name)
	for _, a := range l.active {
		if a == abs {
			return errorf(pos, ErrInclude, "include cycle: %s includes %s again", display, disp)
		}
	}
	p, err := l.readFile(pos, ErrInclude, disp, abs, snippet)
	if err != nil {
		return err
	}
	defer func() { l.active = l.active[:len(l.active)-1] }()
	for _, c := range append([]etree.Token(nil), p.top.Child...) {
		inc.AddChild(c)
	}
	l.t.units[inc] = &unit{kind: unitInclude, path: abs, elem: inc, file: p, snippet: snippet}
	return l.expand(inc, disp, depth+1)
}

// resolve joins an include or store path to the including file's
// directory, both as displayed and as an absolute path.
func resolve(display, abs, name string) (string, string) {
	if filepath.IsAbs(name) {
		return name, filepath.Clean(name)
	}
	return filepath.Join(filepath.Dir(display), name), filepath.Join(filepath.Dir(abs), name)
}

// pieceName is the file name of piece number seq in a backing store.
func pieceName(seq int) string { return fmt.Sprintf("%010d.xml", seq) }

func (l *loader) backingStore(e *etree.Element, display string, depth int) error {
	pos := l.t.metas[e].pos
	if l.noFiles {
		return errorf(pos, ErrBackingStore, "backing stores are not allowed here")
	}
	if _, isRoot := l.t.units[e]; isRoot || e.Parent() == nil {
		return errorf(pos, ErrBackingStore, "the root element cannot have a backing store")
	}
	pos = l.t.attrPos(e, attrBackingStore)
	name := interpolate(e.SelectAttrValue(attrBackingStore, ""), l.env)
	if name == "" {
		return errorf(pos, ErrBackingStore, "empty backingstore attribute on <%s>", e.FullTag())
	}
	disp, dir := resolve(display, l.active[len(l.active)-1], name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		why := "cannot read backing store"
		if errors.Is(err, fs.ErrNotExist) {
			why = "missing backing store directory"
		}
		return &Error{Pos: pos, Msg: fmt.Sprintf("%s %s", why, disp), Err: fmt.Errorf("%w: %w", ErrBackingStore, err)}
	}
	st := &store{dir: dir, elem: e, next: 1}
	l.t.stores[e] = st
	// Children written inline are moved into the store at the next
	// write-back; they keep their place before the stored pieces.
	inline := e.ChildElements()
	for _, c := range inline {
		e.RemoveChild(c)
	}
	var names []string
	for _, d := range entries {
		n := d.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".xml") {
			continue // temporary files of an interrupted write, notes
		}
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		seq, err := strconv.Atoi(strings.TrimSuffix(n, ".xml"))
		if err != nil || seq <= 0 {
			return errorf(Pos{File: filepath.Join(disp, n)}, ErrBackingStore, "not a backing store piece name (want NNNNNNNNNN.xml)")
		}
		p, err := l.readFile(pos, ErrBackingStore, filepath.Join(disp, n), filepath.Join(dir, n), false)
		if err != nil {
			return err
		}
		piece := p.top
		p.doc.RemoveChild(piece)
		e.AddChild(piece)
		l.t.units[piece] = &unit{kind: unitPiece, path: filepath.Join(dir, n), elem: piece, file: p}
		if seq >= st.next {
			st.next = seq + 1
		}
		err = l.expand(piece, filepath.Join(disp, n), depth+1)
		l.active = l.active[:len(l.active)-1]
		if err != nil {
			return err
		}
	}
	if len(inline) > 0 {
		// The including file must be rewritten without them.
		l.t.migrate = append(l.t.migrate, e)
	}
	for _, c := range inline {
		e.AddChild(c)
		u := &unit{kind: unitPiece, path: filepath.Join(dir, pieceName(st.next)), elem: c}
		l.t.units[c] = u
		l.t.migrate = append(l.t.migrate, c)
		st.next++
		if err := l.expand(c, display, depth+1); err != nil {
			return err
		}
	}
	return nil
}
