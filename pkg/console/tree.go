package console

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Func runs a command. args are the words after the command's path, with
// "--json" removed (Session.JSON reports it). Output goes to s; an error is
// shown to the user (and sent as the command's error to JSON clients).
type Func func(s *Session, args []string) error

// Completer returns the candidates for the last word of args (which may be
// empty or partial). The session filters them by prefix, so a completer may
// return every candidate.
type Completer func(s *Session, args []string) []string

// Command is one node of a command tree: a word, its help, what it runs and
// its sub-commands.
type Command struct {
	Name     string
	Help     string
	Run      Func
	Complete Completer
	// Exact: the word is never abbreviated (libmtev's "exit").
	Exact bool

	children []*Command
}

// Children returns the sub-commands in name order.
func (c *Command) Children() []*Command { return append([]*Command(nil), c.children...) }

func (c *Command) child(name string) *Command {
	for _, k := range c.children {
		if strings.EqualFold(k.Name, name) {
			return k
		}
	}
	return nil
}

// Describe sets the command's help line and returns the command.
func (c *Command) Describe(help string) *Command { c.Help = help; return c }

// Tree is the command set of one mode. Registration and lookup are safe for
// concurrent use; commands are usually registered from init functions.
type Tree struct {
	mu   sync.RWMutex
	root Command
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{} }

// ErrUnknown is returned for words that name no command.
var ErrUnknown = errors.New("console: unknown command")

// ErrAmbiguous is returned for an abbreviation that matches several commands.
var ErrAmbiguous = errors.New("console: ambiguous command")

// Register adds the command at path ("show widgets"): intermediate words
// are created as needed (they list their sub-commands when run alone). It
// panics when path is empty or already has a Func: that is a programming
// error caught by any test.
func (t *Tree) Register(path string, fn Func, complete Completer) *Command {
	words := strings.Fields(path)
	if len(words) == 0 {
		panic("console: register: empty path")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := &t.root
	for _, w := range words {
		k := n.child(w)
		if k == nil {
			k = &Command{Name: strings.ToLower(w)}
			n.children = append(n.children, k)
			sort.Slice(n.children, func(i, j int) bool { return n.children[i].Name < n.children[j].Name })
		}
		n = k
	}
	if fn != nil && n.Run != nil {
		panic("console: register: duplicate command " + path)
	}
	if fn != nil {
		n.Run = fn
	}
	if complete != nil {
		n.Complete = complete
	}
	return n
}

// Lookup resolves the leading words of line to a command: each word is
// matched case-insensitively, exactly or as an unambiguous prefix. It
// returns the command, the words that resolved it and the remaining
// arguments. An unknown word yields ErrUnknown with the closest names, an
// ambiguous one ErrAmbiguous with the candidates.
func (t *Tree) Lookup(words []string) (*Command, []string, []string, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := &t.root
	var path []string
	for i, w := range words {
		if len(n.children) == 0 {
			return n, path, words[i:], nil
		}
		k, err := n.match(w)
		if err != nil {
			if errors.Is(err, ErrUnknown) && n.Run != nil && n != &t.root {
				// An argument of a command that also has sub-commands.
				return n, path, words[i:], nil
			}
			return nil, path, nil, err
		}
		path = append(path, k.Name)
		n = k
	}
	return n, path, nil, nil
}

// match finds the child named or abbreviated by w.
func (c *Command) match(w string) (*Command, error) {
	if k := c.child(w); k != nil {
		return k, nil
	}
	lw := strings.ToLower(w)
	var found []*Command
	for _, k := range c.children {
		if !k.Exact && strings.HasPrefix(k.Name, lw) {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("%w %q%s", ErrUnknown, w, suggest(w, c.children))
	}
	names := make([]string, len(found))
	for i, k := range found {
		names[i] = k.Name
	}
	return nil, fmt.Errorf("%w %q: %s", ErrAmbiguous, w, strings.Join(names, ", "))
}

// suggest names the children closest to w (edit distance at most 2, or
// sharing a prefix), as ": did you mean a, b?".
func suggest(w string, children []*Command) string {
	lw := strings.ToLower(w)
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	for _, k := range children {
		d := distance(lw, k.Name)
		if d <= 2 || (len(lw) >= 2 && strings.HasPrefix(k.Name, lw[:2])) {
			cs = append(cs, cand{k.Name, d})
		}
	}
	if len(cs) == 0 {
		return ""
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].d < cs[j].d })
	if len(cs) > 5 {
		cs = cs[:5]
	}
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.name
	}
	return ": did you mean " + strings.Join(names, ", ") + "?"
}

// distance is the Levenshtein distance of a and b, bounded to short words.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Complete returns the completions of the last word of words: sub-command
// names when the words so far resolve to a node with children, else what
// the command's Completer offers. Candidates are filtered by the prefix.
func (t *Tree) Complete(s *Session, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	last := words[len(words)-1]
	t.mu.RLock()
	n := &t.root
	i := 0
	for ; i < len(words)-1; i++ {
		if len(n.children) == 0 {
			break
		}
		k, err := n.match(words[i])
		if err != nil {
			if n.Run != nil && n != &t.root {
				break
			}
			t.mu.RUnlock()
			return nil
		}
		n = k
	}
	var cands []string
	if i == len(words)-1 {
		for _, k := range n.children {
			cands = append(cands, k.Name)
		}
	}
	complete := n.Complete
	t.mu.RUnlock()
	if complete != nil && (i < len(words)-1 || len(cands) == 0 || n.Run != nil) {
		cands = append(cands, complete(s, words[i:])...)
	}
	return filterPrefix(cands, last)
}

func filterPrefix(cands []string, prefix string) []string {
	lp := strings.ToLower(prefix)
	var out []string
	seen := map[string]bool{}
	for _, c := range cands {
		if strings.HasPrefix(strings.ToLower(c), lp) && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// helpLines describes the children of the command at path words.
func (t *Tree) helpLines(words []string) ([]string, error) {
	n, _, rest, err := t.Lookup(words)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%w %q under %q", ErrUnknown, rest[0], strings.Join(words[:len(words)-len(rest)], " "))
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	if n.Help != "" && len(words) > 0 {
		out = append(out, n.Help)
	}
	for _, k := range n.children {
		h := k.Help
		if h == "" && len(k.children) > 0 {
			names := make([]string, 0, len(k.children))
			for _, g := range k.children {
				names = append(names, g.Name)
			}
			h = strings.Join(names, "|")
		}
		out = append(out, fmt.Sprintf("  %-16s %s", k.Name, h))
	}
	return out, nil
}

// Default is the tree of the top-level mode: the built-in commands and the
// application's own.
var Default = NewTree()

// Register adds a command to the top-level mode (Default):
//
//	console.Register("show widgets", showWidgets, nil).Describe("list the widgets")
func Register(path string, fn Func, complete Completer) *Command {
	return Default.Register(path, fn, complete)
}
