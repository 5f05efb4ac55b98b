package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/beevik/etree"
	"github.com/google/renameio/v2"
)

// Set changes the value at path: the text of the first element it selects,
// or with a last step "@name" that element's attribute (created if
// missing). The element must exist (ErrNotFound otherwise).
func (c *Config) Set(path, value string) error {
	target, attr, inherit := splitAttr(path)
	if inherit {
		return fmt.Errorf("config: set %s: %w: cannot set an inherited attribute", path, ErrPath)
	}
	changed, err := c.change(func(t *tree) ([]string, error) {
		es, err := c.findLocked(t, &t.doc.Element, target, true)
		if err != nil {
			return nil, err
		}
		if len(es) == 0 {
			return nil, ErrNotFound
		}
		e := es[0]
		if attr == "" {
			if e.Text() == value {
				return nil, nil
			}
			e.SetText(value)
		} else {
			if a := e.SelectAttr(attr); a != nil && a.Value == value {
				return nil, nil
			}
			if attr == attrBackingStore || (attr == attrInclude && e.Tag == tagInclude) {
				return nil, fmt.Errorf("%w: attribute %q is fixed at load", ErrInvalid, attr)
			}
			e.CreateAttr(attr, value)
		}
		c.markLocked(e)
		return []string{elemPath(e)}, nil
	})
	if err != nil {
		return fmt.Errorf("config: set %s: %w", path, err)
	}
	c.notify(changed)
	return nil
}

// Add parses fragment (one XML element, possibly with children) and
// appends it as the last child of the first element parentPath selects.
// Under an <include> the new element is written to the included file;
// under a backing store element it becomes a new piece file.
func (c *Config) Add(parentPath, fragment string) error {
	p, err := parseXML("(fragment)", []byte(fragment), false, map[*etree.Element]*meta{})
	if err != nil {
		return fmt.Errorf("config: add %s: %w", parentPath, err)
	}
	elem := p.top
	if hasReserved(elem) {
		return fmt.Errorf("config: add %s: %w: added content cannot hold <include> or backingstore", parentPath, ErrInvalid)
	}
	changed, err := c.change(func(t *tree) ([]string, error) {
		es, err := c.findLocked(t, &t.doc.Element, parentPath, true)
		if err != nil {
			return nil, err
		}
		if len(es) == 0 {
			return nil, ErrNotFound
		}
		parent := es[0]
		p.doc.RemoveChild(elem)
		appendChild(parent, elem)
		if st := t.stores[parent]; st != nil {
			t.units[elem] = &unit{kind: unitPiece, path: filepath.Join(st.dir, pieceName(st.next)), elem: elem}
			st.next++
		}
		c.markLocked(elem)
		return []string{elemPath(elem)}, nil
	})
	if err != nil {
		return fmt.Errorf("config: add %s: %w", parentPath, err)
	}
	c.notify(changed)
	return nil
}

// Remove deletes every active element that path selects. A removed piece
// of a backing store has its file deleted at write-back; files included
// from inside a removed element are left on disk.
func (c *Config) Remove(path string) error {
	changed, err := c.change(func(t *tree) ([]string, error) {
		es, err := c.findLocked(t, &t.doc.Element, path, false)
		if err != nil {
			return nil, err
		}
		if len(es) == 0 {
			return nil, ErrNotFound
		}
		var changed []string
		for _, e := range es {
			if e.Parent() == &t.doc.Element {
				return nil, fmt.Errorf("%w: cannot remove the root element", ErrInvalid)
			}
		}
		for _, e := range es {
			if e.Parent() == nil {
				continue // inside an element removed earlier in this loop
			}
			changed = append(changed, elemPath(e))
			if u := t.units[e]; u != nil && u.kind == unitPiece {
				delete(t.units, e)
				delete(c.dirty, u)
				// Deleting a file never written is a no-op.
				c.deletes[u.path] = struct{}{}
				e.Parent().RemoveChild(e)
				continue
			}
			parent := e.Parent()
			removeChild(parent, e)
			c.markLocked(parent)
		}
		return changed, nil
	})
	if err != nil {
		return fmt.Errorf("config: remove %s: %w", path, err)
	}
	c.notify(changed)
	return nil
}

func hasReserved(e *etree.Element) bool {
	if e.Tag == tagInclude || e.SelectAttr(attrBackingStore) != nil {
		return true
	}
	for _, ch := range e.ChildElements() {
		if hasReserved(ch) {
			return true
		}
	}
	return false
}

// appendChild adds e as the last element of parent, keeping the file's
// indentation: it goes before trailing whitespace, indented one step more
// than the parent's closing tag.
func appendChild(parent, e *etree.Element) {
	n := len(parent.Child)
	if n > 0 {
		if cd, ok := parent.Child[n-1].(*etree.CharData); ok && isWhitespace(cd.Data) && strings.Contains(cd.Data, "\n") {
			parent.InsertChildAt(n-1, etree.NewText(cd.Data+"  "))
			parent.InsertChildAt(n, e)
			return
		}
	}
	parent.AddChild(e)
}

// removeChild removes e and the whitespace that indented it.
func removeChild(parent, e *etree.Element) {
	i := e.Index()
	parent.RemoveChildAt(i)
	if i > 0 {
		if cd, ok := parent.Child[i-1].(*etree.CharData); ok && isWhitespace(cd.Data) {
			parent.RemoveChildAt(i - 1)
		}
	}
}

// change runs fn under the write lock; if fn reports changes it bumps the
// generation and schedules write-back.
func (c *Config) change(fn func(t *tree) ([]string, error)) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	changed, err := fn(c.t)
	if err != nil || len(changed) == 0 {
		return nil, err
	}
	c.gen++
	c.scheduleLocked()
	return changed, nil
}

// unitOf returns the unit e is written to. An <include> element itself
// belongs to the file that holds it; its children to the included file.
func (t *tree) unitOf(e *etree.Element) *unit {
	for x := e; x != nil; x = x.Parent() {
		if u := t.units[x]; u != nil && !(u.kind == unitInclude && x == e) {
			return u
		}
	}
	return nil
}

// markLocked marks the unit holding e as needing a write.
func (c *Config) markLocked(e *etree.Element) {
	if u := c.t.unitOf(e); u != nil {
		c.dirty[u] = struct{}{}
	}
	c.scheduleLocked()
}

// scheduleLocked arms the coalescing timer if write-back is enabled and
// something is pending.
func (c *Config) scheduleLocked() {
	if c.opts.NoWriteBack || c.closed || c.timer != nil || (len(c.dirty) == 0 && len(c.deletes) == 0) {
		return
	}
	c.timerWG.Add(1)
	c.timer = c.clock.AfterFunc(c.opts.Coalesce, c.background)
}

func (c *Config) background() {
	defer c.timerWG.Done()
	c.mu.Lock()
	c.timer = nil
	c.mu.Unlock()
	if err := c.Flush(); err != nil && c.opts.OnWriteError != nil {
		c.opts.OnWriteError(err)
	}
}

// Pending reports how many files the next write-back will write or delete.
func (c *Config) Pending() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.dirty) + len(c.deletes)
}

// job is one file write prepared under the lock.
type job struct {
	u    *unit
	data []byte
}

// Flush writes every pending change now, whether or not automatic
// write-back is enabled. Each file is replaced atomically (a crash leaves
// the old or the new file whole) with its mode and owner kept. Pieces are
// written before the files that refer to them. It returns the number of
// files written or deleted.
func (c *Config) Flush() error {
	_, err := c.flush()
	return err
}

// flushStats counts what one write-back did.
type flushStats struct {
	files int // written or deleted
	bytes int // written
}

func (c *Config) flush() (flushStats, error) {
	var st flushStats
	c.flushMu.Lock()
	defer c.flushMu.Unlock()

	c.mu.Lock()
	t := c.t
	jobs := make([]job, 0, len(c.dirty))
	for u := range c.dirty {
		data, err := t.render(u)
		if err != nil {
			c.mu.Unlock()
			return st, fmt.Errorf("config: flush: %w", err)
		}
		jobs = append(jobs, job{u: u, data: data})
	}
	var deletes []string
	for p := range c.deletes {
		deletes = append(deletes, p)
	}
	clear(c.dirty)
	clear(c.deletes)
	rootMode := os.FileMode(0o644)
	if u := t.units[t.doc.Root()]; u != nil {
		if fi, err := os.Stat(u.path); err == nil {
			rootMode = fi.Mode().Perm()
		}
	}
	c.mu.Unlock()

	// Pieces, then included files, then the root.
	sort.Slice(jobs, func(i, j int) bool {
		if jobs[i].u.kind != jobs[j].u.kind {
			return jobs[i].u.kind > jobs[j].u.kind
		}
		return jobs[i].u.path < jobs[j].u.path
	})
	var errs []error
	var failed []*unit
	dirs := map[string]bool{}
	for _, j := range jobs {
		if err := writeAtomic(j.u.path, j.data, rootMode); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrWrite, j.u.path, err))
			failed = append(failed, j.u)
			continue
		}
		dirs[filepath.Dir(j.u.path)] = true
		st.files++
		st.bytes += len(j.data)
	}
	sort.Strings(deletes)
	var failedDeletes []string
	for _, p := range deletes {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("%w: remove %s: %w", ErrWrite, p, err))
			failedDeletes = append(failedDeletes, p)
			continue
		}
		dirs[filepath.Dir(p)] = true
		st.files++
	}
	for d := range dirs {
		syncDir(d)
	}
	if len(failed) > 0 || len(failedDeletes) > 0 {
		c.mu.Lock()
		if c.t == t { // not replaced by a reload meanwhile
			for _, u := range failed {
				c.dirty[u] = struct{}{}
			}
			for _, p := range failedDeletes {
				c.deletes[p] = struct{}{}
			}
		}
		c.mu.Unlock()
	}
	if len(errs) > 0 {
		return st, fmt.Errorf("config: flush: %w", errors.Join(errs...))
	}
	return st, nil
}

// writeAtomic replaces path with data through a temporary file in the same
// directory and a rename, keeping the existing file's mode and owner. A new
// file gets mode perm.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	var uid, gid = -1, -1
	if fi, err := os.Stat(path); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	pf, err := renameio.NewPendingFile(path, renameio.WithTempDir(filepath.Dir(path)), renameio.WithStaticPermissions(perm), renameio.WithExistingPermissions())
	if err != nil {
		return err
	}
	defer pf.Cleanup()
	if _, err := pf.Write(data); err != nil {
		return err
	}
	if uid >= 0 {
		if fi, err := pf.Stat(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != uid || int(st.Gid) != gid) {
				if err := pf.Chown(uid, gid); err != nil {
					return fmt.Errorf("cannot keep owner %d:%d: %w", uid, gid, err)
				}
			}
		}
	}
	return pf.CloseAtomicallyReplace()
}

// syncDir makes a rename in dir durable; failure only weakens durability
// across power loss, never atomicity, so it is not reported.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// render serializes one unit as its file's bytes.
func (t *tree) render(u *unit) ([]byte, error) {
	doc := etree.NewDocument()
	doc.WriteSettings.CanonicalEndTags = false
	if u.file != nil {
		for _, tok := range u.file.doc.Child {
			switch x := tok.(type) {
			case *etree.ProcInst:
				doc.AddChild(etree.NewProcInst(x.Target, x.Inst))
				doc.CreateText("\n")
			case *etree.Directive:
				doc.AddChild(etree.NewDirective(x.Data))
				doc.CreateText("\n")
			case *etree.Comment:
				doc.AddChild(etree.NewComment(x.Data))
				doc.CreateText("\n")
			}
		}
	}
	switch u.kind {
	case unitRoot, unitPiece:
		doc.AddChild(t.pruned(u.elem))
	case unitInclude:
		if u.snippet {
			for _, tok := range u.elem.Child {
				doc.AddChild(t.prunedToken(tok))
			}
		} else {
			root := etree.NewElement(u.file.top.FullTag())
			for _, a := range u.file.top.Attr {
				root.CreateAttr(a.FullKey(), a.Value)
			}
			for _, tok := range u.elem.Child {
				root.AddChild(t.prunedToken(tok))
			}
			doc.AddChild(root)
		}
	}
	if !u.snippet {
		doc.CreateText("\n")
	}
	return doc.WriteToBytes()
}

// pruned copies e for writing into e's own file: the content of nested
// includes and backing stores is left out (it lives in other files).
func (t *tree) pruned(e *etree.Element) *etree.Element {
	out := etree.NewElement(e.FullTag())
	for _, a := range e.Attr {
		out.CreateAttr(a.FullKey(), a.Value)
	}
	if u := t.units[e]; (u != nil && u.kind == unitInclude) || t.stores[e] != nil {
		return out
	}
	for _, tok := range e.Child {
		out.AddChild(t.prunedToken(tok))
	}
	return out
}

func (t *tree) prunedToken(tok etree.Token) etree.Token {
	switch x := tok.(type) {
	case *etree.Element:
		return t.pruned(x)
	case *etree.CharData:
		if x.IsCData() {
			return etree.NewCData(x.Data)
		}
		return etree.NewText(x.Data)
	case *etree.Comment:
		return etree.NewComment(x.Data)
	case *etree.ProcInst:
		return etree.NewProcInst(x.Target, x.Inst)
	case *etree.Directive:
		return etree.NewDirective(x.Data)
	}
	return etree.NewText("")
}
