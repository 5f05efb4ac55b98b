package stats

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/openhistogram/circonusllhist"
)

// ErrConflict is returned when a name is registered twice with different
// kinds, or as both a namespace and a metric.
var ErrConflict = errors.New("name already registered differently")

// ErrInvalid is returned for an empty or malformed name or tag.
var ErrInvalid = errors.New("invalid name")

// Tag is a category:value pair attached to a namespace or a metric.
type Tag struct{ Key, Value string }

func (t Tag) String() string { return t.Key + ":" + t.Value }

// Registry is a tree of namespaces holding metrics. Its methods are safe
// for concurrent use; recording into a metric never touches the registry.
type Registry struct {
	root *Namespace
	app  string // guarded by root.mu
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{}
	r.root = &Namespace{reg: r}
	return r
}

// Default is the process's registry: the runtime registers its subsystems
// here and serves it at /mtev/stats.json and /metrics.
var Default = NewRegistry()

// Namespace is a node of the tree: libmtev's stats namespace. A namespace
// made without tags carries the tag <parent>:<name> in the tagged output
// (libmtev's mtev:eventer); one made with tags carries those instead. The
// tags of every namespace above a metric are inherited by it.
type Namespace struct {
	reg      *Registry
	parent   *Namespace
	name     string
	tags     []Tag // explicit tags; nil: the default tag
	mu       sync.RWMutex
	children map[string]*Namespace
	metrics  map[string]*metric // by key
}

// Name returns the namespace's name ("" for the root).
func (n *Namespace) Name() string { return n.name }

// Root returns the registry's root namespace.
func (r *Registry) Root() *Namespace { return r.root }

// NS returns the namespace at path ("mtev/eventer"), creating what is
// missing. Tags, if given, are set on the last element when it is created.
func (r *Registry) NS(path string, tags ...Tag) *Namespace { return r.root.NS(path, tags...) }

// NS returns the namespace at path below n, creating what is missing. Tags,
// if given, are set on the last element when it is created. It panics on an
// empty path element: names come from code.
func (n *Namespace) NS(path string, tags ...Tag) *Namespace {
	ns, err := n.lookup(path, tags)
	if err != nil {
		panic(err)
	}
	return ns
}

func (n *Namespace) lookup(path string, tags []Tag) (*Namespace, error) {
	cur := n
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("stats: namespace %q: empty element: %w", path, ErrInvalid)
		}
		var t []Tag
		if i == len(parts)-1 {
			t = tags
		}
		next, err := cur.child(p, t)
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

func (n *Namespace) child(name string, tags []Tag) (*Namespace, error) {
	n.mu.RLock()
	c := n.children[name]
	n.mu.RUnlock()
	if c != nil {
		return c, nil
	}
	if err := checkTags(tags); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.children[name]; c != nil {
		return c, nil
	}
	if _, ok := n.metrics[name]; ok {
		return nil, fmt.Errorf("stats: %s: a metric, not a namespace: %w", n.path(name), ErrConflict)
	}
	c = &Namespace{reg: n.reg, parent: n, name: name, tags: sortTags(tags)}
	if n.children == nil {
		n.children = map[string]*Namespace{}
	}
	n.children[name] = c
	return c, nil
}

func (n *Namespace) path(name string) string {
	var parts []string
	for c := n; c != nil && c.parent != nil; c = c.parent {
		parts = append(parts, c.name)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString(parts[i])
		b.WriteByte('/')
	}
	b.WriteString(name)
	return b.String()
}

func checkTags(tags []Tag) error {
	for _, t := range tags {
		if t.Key == "" || strings.ContainsAny(t.Key, ":,[]|") || strings.ContainsAny(t.Value, ",[]|") {
			return fmt.Errorf("stats: tag %q: %w", t.String(), ErrInvalid)
		}
	}
	return nil
}

func sortTags(tags []Tag) []Tag {
	if len(tags) == 0 {
		return nil
	}
	out := append([]Tag(nil), tags...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		return out[i].Value < out[j].Value
	})
	return out
}

// metricKey is the key of a metric inside its namespace: its name, or
// name|ST[k:v,...] when it has tags of its own.
func metricKey(name string, tags []Tag) string {
	if len(tags) == 0 {
		return name
	}
	return name + "|ST[" + joinTags(tags) + "]"
}

func joinTags(tags []Tag) string {
	var b strings.Builder
	for i, t := range tags {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t.Key)
		b.WriteByte(':')
		b.WriteString(t.Value)
	}
	return b.String()
}

// add registers m, or returns the metric already registered under its key
// when it is of the same kind and recorded here (not a function).
func (n *Namespace) add(m *metric, shared bool) (*metric, error) {
	if m.name == "" || strings.ContainsAny(m.name, "/|") {
		return nil, fmt.Errorf("stats: metric %q: %w", n.path(m.name), ErrInvalid)
	}
	if err := checkTags(m.tags); err != nil {
		return nil, err
	}
	m.tags = sortTags(m.tags)
	m.key = metricKey(m.name, m.tags)
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.children[m.name]; ok {
		return nil, fmt.Errorf("stats: %s: a namespace, not a metric: %w", n.path(m.name), ErrConflict)
	}
	if old, ok := n.metrics[m.key]; ok {
		if shared && old.kind == m.kind && old.typeCode == m.typeCode && (old.counter != nil || old.gauge != nil || old.fgauge != nil || old.hist != nil) {
			return old, nil
		}
		return nil, fmt.Errorf("stats: %s: %w", n.path(m.key), ErrConflict)
	}
	if n.metrics == nil {
		n.metrics = map[string]*metric{}
	}
	n.metrics[m.key] = m
	return m, nil
}

func (n *Namespace) mustAdd(m *metric) *metric {
	got, err := n.add(m, true)
	if err != nil {
		panic(err)
	}
	return got
}

// Counter returns the counter name with the given tags, registering it the
// first time. It panics if the name is taken by another kind of metric.
func (n *Namespace) Counter(name string, tags ...Tag) *Counter {
	return n.mustAdd(&metric{name: name, tags: tags, kind: KindCounter, typeCode: "L", counter: new(Counter)}).counter
}

// Gauge returns the integer gauge name, registering it the first time.
func (n *Namespace) Gauge(name string, tags ...Tag) *Gauge {
	return n.mustAdd(&metric{name: name, tags: tags, kind: KindGauge, typeCode: "l", gauge: new(Gauge)}).gauge
}

// FloatGauge returns the float gauge name, registering it the first time.
func (n *Namespace) FloatGauge(name string, tags ...Tag) *FloatGauge {
	return n.mustAdd(&metric{name: name, tags: tags, kind: KindGauge, typeCode: "n", fgauge: new(FloatGauge)}).fgauge
}

// Histogram returns the histogram name, registering it the first time.
func (n *Namespace) Histogram(name string, tags ...Tag) *Histogram {
	return n.mustAdd(&metric{name: name, tags: tags, kind: KindHistogram, typeCode: "H", hist: new(Histogram), resettable: true}).hist
}

// RegisterCounter registers an existing counter, e.g. one a subsystem
// keeps in its own structures.
func (n *Namespace) RegisterCounter(name string, c *Counter, tags ...Tag) error {
	_, err := n.add(&metric{name: name, tags: tags, kind: KindCounter, typeCode: "L", counter: c}, false)
	return err
}

// RegisterHistogram registers an existing histogram.
func (n *Namespace) RegisterHistogram(name string, h *Histogram, tags ...Tag) error {
	_, err := n.add(&metric{name: name, tags: tags, kind: KindHistogram, typeCode: "H", hist: h, resettable: true}, false)
	return err
}

// CounterFunc registers a counter read by calling fn, which must be cheap,
// safe from any goroutine, and must not block.
func (n *Namespace) CounterFunc(name string, fn func() uint64, tags ...Tag) error {
	_, err := n.add(&metric{name: name, tags: tags, kind: KindCounter, typeCode: "L", counterFn: fn}, false)
	return err
}

// GaugeFunc registers a gauge read by calling fn (same rules as
// CounterFunc).
func (n *Namespace) GaugeFunc(name string, fn func() float64, tags ...Tag) error {
	_, err := n.add(&metric{name: name, tags: tags, kind: KindGauge, typeCode: "n", gaugeFn: fn}, false)
	return err
}

// HistogramFunc registers a histogram read by calling fn (same rules as
// CounterFunc); a reset does not reach it.
func (n *Namespace) HistogramFunc(name string, fn func() *circonusllhist.Histogram, tags ...Tag) error {
	_, err := n.add(&metric{name: name, tags: tags, kind: KindHistogram, typeCode: "H", histFn: fn}, false)
	return err
}

// Unregister removes the metric name with the given tags; it reports
// whether there was one.
func (n *Namespace) Unregister(name string, tags ...Tag) bool {
	key := metricKey(name, sortTags(tags))
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.metrics[key]
	delete(n.metrics, key)
	return ok
}

// Remove removes the namespace name below n with everything under it; it
// reports whether there was one.
func (n *Namespace) Remove(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.children[name]
	delete(n.children, name)
	return ok
}

// One-line registration in the Default registry: the last element of path
// is the metric's name, the others its namespaces.
//
//	var requests = stats.NewCounter("myapp/http/requests")

// NewCounter returns the counter at path in Default.
func NewCounter(path string, tags ...Tag) *Counter {
	ns, name := split(path)
	return ns.Counter(name, tags...)
}

// NewGauge returns the gauge at path in Default.
func NewGauge(path string, tags ...Tag) *Gauge {
	ns, name := split(path)
	return ns.Gauge(name, tags...)
}

// NewHistogram returns the histogram at path in Default.
func NewHistogram(path string, tags ...Tag) *Histogram {
	ns, name := split(path)
	return ns.Histogram(name, tags...)
}

func split(path string) (*Namespace, string) {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return Default.root, path
	}
	return Default.NS(path[:i]), path[i+1:]
}

// node is a consistent copy of a namespace's direct content.
type node struct {
	ns       *Namespace
	children []*Namespace
	metrics  []*metric
}

func (n *Namespace) list() node {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := node{ns: n}
	for _, c := range n.children {
		out.children = append(out.children, c)
	}
	for _, m := range n.metrics {
		out.metrics = append(out.metrics, m)
	}
	sort.Slice(out.children, func(i, j int) bool { return out.children[i].name < out.children[j].name })
	sort.Slice(out.metrics, func(i, j int) bool { return out.metrics[i].key < out.metrics[j].key })
	return out
}

// effectiveTags returns the tags n contributes.
func (n *Namespace) effectiveTags() []Tag {
	if n.tags != nil {
		return n.tags
	}
	if n.parent == nil || n.parent.parent == nil {
		return nil // the root, and top-level namespaces
	}
	return []Tag{{Key: n.parent.name, Value: n.name}}
}

// walk calls fn for every metric, depth first in name order, with the
// namespaces above it (top-level first).
func (r *Registry) walk(fn func(path []*Namespace, m *metric)) {
	var rec func(path []*Namespace, n *Namespace)
	rec = func(path []*Namespace, n *Namespace) {
		l := n.list()
		for _, m := range l.metrics {
			fn(path, m)
		}
		for _, c := range l.children {
			rec(append(path, c), c)
		}
	}
	rec(nil, r.root)
}

// Reset empties every histogram recorded in the registry (kind
// KindHistogram) or zeroes every counter recorded in it (KindCounter), and
// returns how many it cleared. Metrics read through functions are not
// reset.
func (r *Registry) Reset(kind Kind) int {
	n := 0
	r.walk(func(_ []*Namespace, m *metric) {
		switch {
		case kind == KindHistogram && m.hist != nil:
			m.hist.Reset()
			n++
		case kind == KindCounter && m.counter != nil:
			m.counter.v.Store(0)
			n++
		}
	})
	return n
}

// SetApp tags every top-level namespace with app:<name>, as libmtev tags
// its namespaces; existing and future ones alike.
func (r *Registry) SetApp(name string) {
	r.root.mu.Lock()
	defer r.root.mu.Unlock()
	r.app = name
}

// AppName returns the name given to SetApp.
func (r *Registry) AppName() string { return r.appName() }

func (r *Registry) appName() string {
	r.root.mu.RLock()
	defer r.root.mu.RUnlock()
	return r.app
}
