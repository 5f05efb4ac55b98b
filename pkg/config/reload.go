package config

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/beevik/etree"
)

// Reload reads the files again. The new files are parsed and validated
// (Options.Sections) first: on any problem the running configuration stays
// and the error lists every problem with file and line. On success the new
// document replaces the old one, changes made in memory and not yet
// written are discarded, the generation is bumped, and subscribers are
// told which element paths changed (added, removed, or with different
// attributes or text), which Reload also returns.
func (c *Config) Reload() ([]string, error) {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	t, err := loadTree(c.path, c.env)
	if err != nil {
		return nil, fmt.Errorf("config: reload: %w", err)
	}
	if err := c.validateTree(t, c.opts.Sections); err != nil {
		return nil, fmt.Errorf("config: reload: %w", err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("config: reload: %w", ErrClosed)
	}
	old := c.t
	c.t = t
	c.gen++
	clear(c.dirty)
	clear(c.deletes)
	for _, e := range t.migrate {
		c.markLocked(e)
	}
	t.migrate = nil
	c.mu.Unlock()
	changed := diffTrees(old, t)
	ReloadHook.Invoke(Reloaded{Config: c, Changed: changed})
	c.notify(changed)
	return changed, nil
}

// signatures maps every element's path to a digest of its own content:
// tag, attributes and text (not its children).
func signatures(t *tree) map[string]string {
	out := map[string]string{}
	var walk func(e *etree.Element, p string)
	walk = func(e *etree.Element, p string) {
		var b strings.Builder
		attrs := make([]string, 0, len(e.Attr))
		for _, a := range e.Attr {
			attrs = append(attrs, a.FullKey()+"="+a.Value)
		}
		sort.Strings(attrs)
		b.WriteString(strings.Join(attrs, "\x00"))
		b.WriteString("\x01")
		for _, tok := range e.Child {
			if cd, ok := tok.(*etree.CharData); ok {
				b.WriteString(strings.TrimSpace(cd.Data))
			}
		}
		out[p] = b.String()
		counts := map[string]int{}
		kids := e.ChildElements()
		for _, ch := range kids {
			counts[ch.FullTag()]++
		}
		seen := map[string]int{}
		for _, ch := range kids {
			tag := ch.FullTag()
			seen[tag]++
			step := tag
			if counts[tag] > 1 {
				step = fmt.Sprintf("%s[%d]", tag, seen[tag])
			}
			walk(ch, p+"/"+step)
		}
	}
	root := t.doc.Root()
	walk(root, "/"+root.FullTag())
	return out
}

// diffTrees lists the paths whose content differs between two trees. For
// an added or removed subtree only its top is listed.
func diffTrees(a, b *tree) []string {
	sa, sb := signatures(a), signatures(b)
	var out []string
	for p, sig := range sb {
		old, ok := sa[p]
		switch {
		case !ok:
			if _, parentNew := sa[path.Dir(p)]; parentNew || path.Dir(p) == "/" {
				out = append(out, p)
			}
		case old != sig:
			out = append(out, p)
		}
	}
	for p := range sa {
		if _, ok := sb[p]; !ok {
			if _, parentKept := sb[path.Dir(p)]; parentKept || path.Dir(p) == "/" {
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}
