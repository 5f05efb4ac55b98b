package config

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
)

// DefaultCoalesce is how long write-back waits after a change for more
// changes before writing, when Options.Coalesce is zero.
const DefaultCoalesce = time.Second

// Clock schedules delayed work; it is injected so that coalescing can be
// tested without waiting. The zero Options use the real clock.
type Clock interface {
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call scheduled by a Clock.
type Timer interface {
	// Stop cancels the call; it reports false if the call already started.
	Stop() bool
}

type realClock struct{}

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Options tune a Config. The zero value is ready to use.
type Options struct {
	// Env looks up environment variables for require_env and {{ENV:...}}
	// interpolation; nil means os.LookupEnv.
	Env Environment
	// NoWriteBack disables automatic write-back: changes stay in memory
	// until Flush is called.
	NoWriteBack bool
	// Coalesce is the quiet time after a change before write-back runs,
	// so a burst of changes costs one write per file. Zero means
	// DefaultCoalesce.
	Coalesce time.Duration
	// Clock schedules coalesced write-back; nil means the real clock.
	Clock Clock
	// Sections are validated by Load and Reload; a violation fails them.
	Sections []Section
	// OnWriteError receives errors of background write-back (which has
	// no caller to return them to). It must not block. The change stays
	// pending and is retried with the next change or Flush.
	OnWriteError func(error)
}

// Config is a loaded configuration: the merged document of a root file, its
// includes and its backing stores. All methods are safe for concurrent use.
//
// Lock order: flushMu, then mu, then subsMu. Subscribers and OnWriteError
// are called with no lock held.
type Config struct {
	path  string
	opts  Options
	env   Environment
	clock Clock

	flushMu sync.Mutex // serializes Flush; taken before mu

	mu      sync.RWMutex
	t       *tree
	gen     uint64
	dirty   map[*unit]struct{}
	deletes map[string]struct{}
	timer   Timer
	closed  bool

	timerWG sync.WaitGroup // a scheduled or running background write-back

	subsMu  sync.Mutex
	subs    map[int]func(changed []string)
	nextSub int
}

// Load reads the configuration rooted at path, with its includes and backing
// stores, and validates opts.Sections. Errors name the file and line.
func Load(path string, opts Options) (*Config, error) {
	c := newConfig(path, opts)
	t, err := loadTree(path, c.env)
	if err != nil {
		return nil, fmt.Errorf("config: load: %w", err)
	}
	c.t = t
	if err := c.validateTree(t, opts.Sections); err != nil {
		return nil, fmt.Errorf("config: load: %w", err)
	}
	if LoadHook.Invoke(c) == hook.Abort {
		return nil, fmt.Errorf("config: load: %s: %w", c.path, ErrAborted)
	}
	c.markMigrations()
	return c, nil
}

// Parse builds a configuration from one in-memory document named name
// (used in messages). Includes and backing stores resolve against the
// current directory. Write-back of the root writes to name.
func Parse(name string, data []byte, opts Options) (*Config, error) {
	c := newConfig(name, opts)
	t, err := loadBytes(name, data, c.env, false)
	if err != nil {
		return nil, fmt.Errorf("config: parse: %w", err)
	}
	c.t = t
	if err := c.validateTree(t, opts.Sections); err != nil {
		return nil, fmt.Errorf("config: parse: %w", err)
	}
	if LoadHook.Invoke(c) == hook.Abort {
		return nil, fmt.Errorf("config: parse: %s: %w", c.path, ErrAborted)
	}
	c.markMigrations()
	return c, nil
}

func newConfig(path string, opts Options) *Config {
	c := &Config{
		path:    path,
		opts:    opts,
		env:     opts.Env,
		clock:   opts.Clock,
		dirty:   make(map[*unit]struct{}),
		deletes: make(map[string]struct{}),
		subs:    make(map[int]func([]string)),
	}
	if c.env == nil {
		c.env = os.LookupEnv
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	if c.opts.Coalesce <= 0 {
		c.opts.Coalesce = DefaultCoalesce
	}
	return c
}

// markMigrations queues the writes that move inline children into their
// backing stores.
func (c *Config) markMigrations() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.t.migrate {
		c.markLocked(e)
	}
	c.t.migrate = nil
}

// Path returns the root file's path as given to Load.
func (c *Config) Path() string { return c.path }

// Files returns the absolute paths of every file the configuration was
// read from: the root file, includes and backing store pieces.
func (c *Config) Files() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]string(nil), c.t.files...)
}

// Generation returns a counter bumped by every change and reload.
func (c *Config) Generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// Close stops background write-back, waiting for one in progress, and
// flushes pending changes unless write-back is disabled. It is idempotent;
// after Close, changes fail with ErrClosed while reads keep working.
func (c *Config) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.timer != nil && c.timer.Stop() {
		c.timerWG.Done()
	}
	c.timer = nil
	c.mu.Unlock()
	c.timerWG.Wait()
	if c.opts.NoWriteBack {
		return nil
	}
	return c.Flush()
}

// Subscribe registers fn to be told which element paths changed, after
// every Reload that changed something and every change through the API.
// fn runs in the goroutine that made the change, with no lock held; it may
// read the Config. The returned function cancels the subscription.
func (c *Config) Subscribe(fn func(changed []string)) (cancel func()) {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	id := c.nextSub
	c.nextSub++
	c.subs[id] = fn
	return func() {
		c.subsMu.Lock()
		defer c.subsMu.Unlock()
		delete(c.subs, id)
	}
}

func (c *Config) notify(changed []string) {
	if len(changed) == 0 {
		return
	}
	c.subsMu.Lock()
	fns := make([]func([]string), 0, len(c.subs))
	for _, fn := range c.subs {
		fns = append(fns, fn)
	}
	c.subsMu.Unlock()
	for _, fn := range fns {
		fn(append([]string(nil), changed...))
	}
}

// Document returns a deep copy of the merged document: includes appear as
// <include> elements holding the included content, backing stores as
// elements holding their pieces.
func (c *Config) Document() *etree.Document {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.t.doc.Copy()
}

// posOf returns where e was read from; elements created in memory report
// the position of their nearest ancestor read from a file, with line 0.
func (t *tree) posOf(e *etree.Element) Pos {
	for x := e; x != nil; x = x.Parent() {
		if m := t.metas[x]; m != nil {
			if x == e {
				return m.pos
			}
			return Pos{File: m.pos.File}
		}
	}
	return Pos{}
}

// attrPos returns where attribute name of e was read from.
func (t *tree) attrPos(e *etree.Element, name string) Pos {
	p := t.posOf(e)
	if m := t.metas[e]; m != nil {
		for _, a := range m.attrs {
			if a.name == name {
				p.Line = a.line
			}
		}
	}
	return p
}
