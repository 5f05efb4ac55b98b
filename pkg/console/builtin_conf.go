package console

import (
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"github.com/beevik/etree"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

// ConfTree holds the commands of "configure terminal" mode.
var ConfTree = NewTree()

// ConfMode is the mode "configure terminal" enters: its prompt names the
// current element, as libmtev's "mtev(conf:/path)# ".
var ConfMode = &Mode{Name: "conf", Tree: ConfTree, Prompt: func(s *Session) string {
	return fmt.Sprintf("%s(conf:%s)# ", s.srv.name, s.confPath)
}}

func init() {
	Register("show conf", showConf, completeConfPath).Describe("show conf PATH: the element at PATH as XML")
	Register("configure", nil, nil).Describe("terminal|reload")
	Register("configure terminal", confTerminal, nil).Describe("edit the living configuration")
	Register("configure reload", confReload, nil).Describe("re-read the configuration files (validated; a bad file changes nothing)")
	ConfTree.Register("ls", confLs, nil).Describe("settings and subsections of the current section")
	ConfTree.Register("cd", confCd, completeConfPath).Describe("cd PATH: change section (.., relative or /absolute)")
	ConfTree.Register("section", confSection, completeConfPath).Describe("section NAME: enter section NAME, creating it")
	ConfTree.Register("no", nil, nil).Describe("section")
	ConfTree.Register("no section", confNoSection, completeConfPath).Describe("no section NAME: remove section NAME")
	ConfTree.Register("set", confSet, nil).Describe("set ATTR VALUE: set an attribute of the current section")
	ConfTree.Register("write", nil, nil).Describe("file|terminal|memory")
	ConfTree.Register("write file", confWriteFile, nil).Describe("write pending changes to the files now")
	ConfTree.Register("write terminal", confWriteTerminal, nil).Describe("print the whole configuration")
	ConfTree.Register("write memory", confWriteMemory, nil).Describe("keep changes in memory (generation, pending files)")
}

func needConfig(s *Session, what string) (*config.Config, error) {
	if s.srv.opts.Config == nil {
		return nil, unavailable(what)
	}
	return s.srv.opts.Config, nil
}

// resolve turns p into an absolute element path from the session's section
// (or the root element outside configure mode).
func (s *Session) resolve(c *config.Config, p string) string {
	base := s.confPath
	if s.Mode() != ConfMode || base == "" {
		base = c.Root().Path()
	}
	if strings.HasPrefix(p, "/") {
		return path.Clean(p)
	}
	return path.Clean(base + "/" + p)
}

func find(c *config.Config, p string) (config.Node, error) {
	n, ok, err := c.Find(p)
	if err != nil {
		return config.Node{}, fmt.Errorf("console: %s: %w", p, err)
	}
	if !ok {
		return config.Node{}, fmt.Errorf("console: no section %s", p)
	}
	return n, nil
}

func writeXML(w io.Writer, e *etree.Element) {
	doc := etree.NewDocument()
	doc.SetRoot(e)
	doc.Indent(2)
	doc.WriteTo(w)
}

func showConf(s *Session, args []string) error {
	c, err := needConfig(s, "show conf")
	if err != nil {
		return err
	}
	if len(args) > 0 && args[0] == "-x" {
		args = args[1:]
	}
	p := "."
	if len(args) == 1 {
		p = args[0]
	} else if len(args) > 1 {
		return fmt.Errorf("console: usage: show conf PATH")
	}
	n, err := find(c, s.resolve(c, p))
	if err != nil {
		return err
	}
	e := n.Merged()
	if s.json {
		return s.Output(elementJSON(e), nil)
	}
	writeXML(s, e)
	return nil
}

// elementJSON is an element as {"tag","attrs","text","children"}.
func elementJSON(e *etree.Element) map[string]any {
	m := map[string]any{"tag": e.Tag}
	if len(e.Attr) > 0 {
		attrs := map[string]string{}
		for _, a := range e.Attr {
			attrs[a.Key] = a.Value
		}
		m["attrs"] = attrs
	}
	if t := strings.TrimSpace(e.Text()); t != "" {
		m["text"] = t
	}
	var kids []any
	for _, k := range e.ChildElements() {
		kids = append(kids, elementJSON(k))
	}
	if kids != nil {
		m["children"] = kids
	}
	return m
}

func confTerminal(s *Session, args []string) error {
	c, err := needConfig(s, "configure terminal")
	if err != nil {
		return err
	}
	s.confPath = c.Root().Path()
	s.Push(ConfMode)
	return nil
}

func confReload(s *Session, args []string) error {
	c, err := needConfig(s, "configure reload")
	if err != nil {
		return err
	}
	reload := s.srv.opts.Runtime.Reload
	if reload == nil {
		reload = c.Reload
	}
	changed, err := reload()
	if err != nil {
		return err
	}
	if changed == nil {
		changed = []string{}
	}
	return s.Output(map[string]any{"changed": changed, "generation": c.Generation()}, func(w io.Writer) {
		if len(changed) == 0 {
			fmt.Fprintln(w, "reloaded: nothing changed")
			return
		}
		fmt.Fprintf(w, "reloaded: %d changed\n", len(changed))
		for _, p := range changed {
			fmt.Fprintf(w, "  %s\n", p)
		}
	})
}

func confLs(s *Session, args []string) error {
	c, err := needConfig(s, "ls")
	if err != nil {
		return err
	}
	p := "."
	if len(args) == 1 {
		p = args[0]
	}
	n, err := find(c, s.resolve(c, p))
	if err != nil {
		return err
	}
	settings := map[string]string{}
	var order []string
	for _, a := range n.Merged().Attr {
		settings["@"+a.Key] = a.Value
		order = append(order, "@"+a.Key)
	}
	var subs []string
	for _, k := range n.Children() {
		if len(k.Children()) == 0 && k.Text() != "" {
			if _, dup := settings[k.Tag()]; !dup {
				order = append(order, k.Tag())
			}
			settings[k.Tag()] = k.Text()
			continue
		}
		subs = append(subs, k.Tag())
	}
	v := map[string]any{"path": n.Path(), "settings": settings, "subsections": subs}
	return s.Output(v, func(w io.Writer) {
		fmt.Fprintln(w, "== Section Settings ==")
		for _, k := range order {
			fmt.Fprintf(w, "%s: %s\n", k, settings[k])
		}
		fmt.Fprintln(w, "\n== Subsections ==")
		for _, k := range subs {
			fmt.Fprintln(w, k)
		}
	})
}

func confCd(s *Session, args []string) error {
	c, err := needConfig(s, "cd")
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return fmt.Errorf("console: usage: cd PATH")
	}
	n, err := find(c, s.resolve(c, args[0]))
	if err != nil {
		return err
	}
	s.confPath = n.Path()
	return nil
}

var xmlName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

func confSection(s *Session, args []string) error {
	c, err := needConfig(s, "section")
	if err != nil {
		return err
	}
	if len(args) != 1 || !xmlName.MatchString(args[0]) {
		return fmt.Errorf("console: usage: section NAME (an XML element name)")
	}
	p := s.resolve(c, args[0])
	if n, ok, err := c.Find(p); err == nil && ok {
		s.confPath = n.Path()
		return nil
	}
	if err := c.Add(s.resolve(c, "."), "<"+args[0]+"/>"); err != nil {
		return err
	}
	n, err := find(c, p)
	if err != nil {
		return err
	}
	s.confPath = n.Path()
	return nil
}

func confNoSection(s *Session, args []string) error {
	c, err := needConfig(s, "no section")
	if err != nil {
		return err
	}
	if len(args) != 1 || strings.Contains(args[0], "..") {
		return fmt.Errorf("console: usage: no section NAME")
	}
	p := s.resolve(c, args[0])
	if _, err := find(c, p); err != nil {
		return err
	}
	return c.Remove(p)
}

func confSet(s *Session, args []string) error {
	c, err := needConfig(s, "set")
	if err != nil {
		return err
	}
	if len(args) != 2 || !xmlName.MatchString(args[0]) {
		return fmt.Errorf("console: usage: set ATTR VALUE")
	}
	return c.Set(s.resolve(c, ".")+"/@"+args[0], args[1])
}

func confWriteFile(s *Session, args []string) error {
	c, err := needConfig(s, "write file")
	if err != nil {
		return err
	}
	pending := c.Pending()
	if err := c.Flush(); err != nil {
		return err
	}
	return s.Output(map[string]any{"written": pending}, func(w io.Writer) { fmt.Fprintf(w, "wrote %d files\n", pending) })
}

func confWriteTerminal(s *Session, args []string) error {
	c, err := needConfig(s, "write terminal")
	if err != nil {
		return err
	}
	if s.json {
		return s.Output(elementJSON(c.Root().Merged()), nil)
	}
	writeXML(s, c.Root().Merged())
	return nil
}

func confWriteMemory(s *Session, args []string) error {
	c, err := needConfig(s, "write memory")
	if err != nil {
		return err
	}
	return s.Output(map[string]any{"generation": c.Generation(), "pending_files": c.Pending()}, func(w io.Writer) {
		fmt.Fprintf(w, "generation %d in memory, %d files pending write-back\n", c.Generation(), c.Pending())
	})
}

// completeConfPath offers the child sections of the session's section.
func completeConfPath(s *Session, args []string) []string {
	c := s.srv.opts.Config
	if c == nil || len(args) != 1 {
		return nil
	}
	dir, _ := path.Split(args[0])
	base := s.resolve(c, ".")
	if dir != "" {
		base = s.resolve(c, dir)
	}
	n, ok, err := c.Find(base)
	if err != nil || !ok {
		return nil
	}
	var out []string
	for _, k := range n.Children() {
		out = append(out, dir+k.Tag())
	}
	return out
}
