package cht

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/cespare/xxhash/v2"
)

// DefaultWeight is the number of points a node gets when its Weight is 0,
// as in libmtev.
const DefaultWeight = 32

// keySeed is libmtev's seed for key positions.
const keySeed = 20021010

// ErrNode is wrapped by New's errors about the node list.
var ErrNode = errors.New("bad node")

// Node is a member of the ring.
type Node struct {
	Name string
	// Weight is the number of points on the ring; 0 means DefaultWeight.
	// A node owns about Weight/(sum of weights) of the keys.
	Weight int
}

type point struct {
	pos  uint32
	node int32
}

// Ring maps keys to nodes. The zero Ring has no nodes.
type Ring struct {
	nodes  []Node
	points []point
	owned  []float64
}

// New builds a ring. Names must be distinct and non-empty; the order of
// nodes does not matter.
func New(nodes []Node) (*Ring, error) {
	r := &Ring{nodes: make([]Node, len(nodes))}
	copy(r.nodes, nodes)
	sort.Slice(r.nodes, func(i, j int) bool { return r.nodes[i].Name < r.nodes[j].Name })
	total := 0
	for i, n := range r.nodes {
		if n.Name == "" {
			return nil, fmt.Errorf("cht: new: %w: empty name", ErrNode)
		}
		if i > 0 && r.nodes[i-1].Name == n.Name {
			return nil, fmt.Errorf("cht: new: %w: %q appears twice", ErrNode, n.Name)
		}
		if n.Weight < 0 || n.Weight > 1<<16 {
			return nil, fmt.Errorf("cht: new: %w: %q has weight %d (0 to 65536)", ErrNode, n.Name, n.Weight)
		}
		if n.Weight == 0 {
			r.nodes[i].Weight = DefaultWeight
		}
		total += r.nodes[i].Weight
	}
	r.points = make([]point, 0, total)
	var d xxhash.Digest
	for i, n := range r.nodes {
		for v := 0; v < n.Weight; v++ {
			d.ResetWithSeed(uint64(v))
			d.WriteString(n.Name)
			r.points = append(r.points, point{pos: uint32(d.Sum64()), node: int32(i)})
		}
	}
	// Node indexes follow name order, so ties sort by name.
	sort.Slice(r.points, func(i, j int) bool {
		a, b := r.points[i], r.points[j]
		return a.pos < b.pos || (a.pos == b.pos && a.node < b.node)
	})
	r.owned = make([]float64, len(r.nodes))
	for i, p := range r.points {
		// A point owns the arc from the previous point (exclusive) to
		// itself (inclusive).
		var prev uint32
		if i == 0 {
			prev = r.points[len(r.points)-1].pos
		} else {
			prev = r.points[i-1].pos
		}
		arc := uint64(p.pos - prev) // wraps for i == 0
		if len(r.points) == 1 {
			arc = 1 << 32
		}
		r.owned[p.node] += float64(arc) / (1 << 32)
	}
	return r, nil
}

// FromNames builds a ring of nodes of default weight.
func FromNames(names ...string) (*Ring, error) {
	nodes := make([]Node, len(names))
	for i, n := range names {
		nodes[i] = Node{Name: n}
	}
	return New(nodes)
}

// Len returns the number of nodes.
func (r *Ring) Len() int {
	if r == nil {
		return 0
	}
	return len(r.nodes)
}

// Nodes returns the nodes, sorted by name, with their weights.
func (r *Ring) Nodes() []Node {
	if r == nil {
		return nil
	}
	return append([]Node(nil), r.nodes...)
}

// Owned returns the share of the ring (0 to 1) the named node owns, as
// libmtev's mtev_cht_node_t.owned.
func (r *Ring) Owned(name string) float64 {
	if r == nil {
		return 0
	}
	i := sort.Search(len(r.nodes), func(i int) bool { return r.nodes[i].Name >= name })
	if i < len(r.nodes) && r.nodes[i].Name == name {
		return r.owned[i]
	}
	return math.NaN()
}

// Position returns where key sits on the ring.
func Position(key []byte) uint32 {
	var d xxhash.Digest
	d.ResetWithSeed(keySeed)
	d.Write(key)
	return uint32(d.Sum64())
}

// first returns the index of the point owning pos.
func (r *Ring) first(pos uint32) int {
	i := sort.Search(len(r.points), func(i int) bool { return r.points[i].pos >= pos })
	if i == len(r.points) {
		i = 0
	}
	return i
}

// Lookup returns the node owning key; false when the ring is empty.
func (r *Ring) Lookup(key []byte) (string, bool) {
	if r.Len() == 0 {
		return "", false
	}
	return r.nodes[r.points[r.first(Position(key))].node].Name, true
}

// LookupString is Lookup of a string key.
func (r *Ring) LookupString(key string) (string, bool) { return r.Lookup([]byte(key)) }

// LookupN returns up to n distinct nodes for key: its owner first, then
// the next distinct nodes clockwise. It returns fewer when the ring has
// fewer nodes.
func (r *Ring) LookupN(key []byte, n int) []string {
	if r.Len() == 0 || n <= 0 {
		return nil
	}
	n = min(n, len(r.nodes))
	out := make([]string, 0, n)
	var seen []bool
	if len(r.nodes) > 64 {
		seen = make([]bool, len(r.nodes))
	}
	var small uint64
	start := r.first(Position(key))
	for k := 0; k < len(r.points) && len(out) < n; k++ {
		idx := r.points[(start+k)%len(r.points)].node
		if seen != nil {
			if seen[idx] {
				continue
			}
			seen[idx] = true
		} else {
			if small&(1<<idx) != 0 {
				continue
			}
			small |= 1 << idx
		}
		out = append(out, r.nodes[idx].Name)
	}
	return out
}
