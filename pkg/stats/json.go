package stats

import (
	"fmt"
	"sort"

	"github.com/openhistogram/circonusllhist"
)

// Format is an output form of /mtev/stats.json.
type Format int

// The output forms, as libmtev names them.
const (
	// Nested: {"mtev":{"eventer":{"events_total":{"_type":"L","_value":10}}}}.
	Nested Format = iota
	// Simple: {"mtev":{"eventer":{"events_total":10}}}, without histograms.
	Simple
	// Tagged: flat, {"events_total|ST[app:x,mtev:eventer]":{"_type":"L","_value":10}},
	// each metric with every tag it inherits, sorted.
	Tagged
)

// ParseFormat reads the format parameter: "" (nested), "simple" or
// "tagged".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "", "nested":
		return Nested, nil
	case "simple":
		return Simple, nil
	case "tagged":
		return Tagged, nil
	}
	return 0, fmt.Errorf("stats: format %q: want simple or tagged: %w", s, ErrInvalid)
}

// Framework is the framework tag of the "mtev" namespace.
const Framework = "mtev-supervise"

// Value is one metric in libmtev's JSON shape: _type is L (counter), l
// (integer gauge), n (float gauge, null for NaN), H (histogram, values as
// "H[<bin>]=<count>" strings) or h (a histogram read with reset).
type Value struct {
	Type  string `json:"_type"`
	Value any    `json:"_value"`
}

// JSON returns the registry's content in the given form, ready for
// encoding/json. With reset, histograms recorded here are emptied as they
// are read (libmtev's reset=1, type "h").
func (r *Registry) JSON(f Format, reset bool) map[string]any {
	out := map[string]any{}
	app := r.appName()
	r.walk(func(path []*Namespace, m *metric) {
		if f == Simple && m.kind == KindHistogram {
			return
		}
		var v any
		switch {
		case m.kind == KindHistogram:
			t := "H"
			if reset && m.hist != nil {
				t = "h"
			}
			v = Value{Type: t, Value: binStrings(m.histogram(reset))}
		case f == Simple:
			v = m.value()
		default:
			v = Value{Type: m.typeCode, Value: m.value()}
		}
		if f == Tagged {
			out[m.name+"|ST["+joinTags(allTags(app, path, m))+"]"] = v
			return
		}
		dst := out
		for _, ns := range path {
			sub, ok := dst[ns.name].(map[string]any)
			if !ok {
				sub = map[string]any{}
				dst[ns.name] = sub
			}
			dst = sub
		}
		dst[m.key] = v
	})
	return out
}

func binStrings(h *circonusllhist.Histogram) []string {
	s := h.DecStrings()
	if s == nil {
		return []string{}
	}
	return s
}

// allTags returns every tag a metric carries: the app and framework tags,
// its namespaces' tags and its own, sorted, one per key:value.
func allTags(app string, path []*Namespace, m *metric) []Tag {
	var tags []Tag
	if app != "" {
		tags = append(tags, Tag{"app", app})
	}
	if len(path) > 0 && path[0].name == "mtev" {
		tags = append(tags, Tag{"framework", Framework})
	}
	for _, ns := range path {
		tags = append(tags, ns.effectiveTags()...)
	}
	tags = append(tags, m.tags...)
	tags = sortTags(tags)
	out := tags[:0]
	for i, t := range tags {
		if i == 0 || t != tags[i-1] {
			out = append(out, t)
		}
	}
	return out
}

// Sample is one metric as read by Samples.
type Sample struct {
	Path  string // namespaces and name, "mtev/eventer/pool/default/cycletime"
	Kind  Kind
	Tags  []Tag   // every tag, as in the tagged form
	Value float64 // counters and gauges
	Hist  *circonusllhist.Histogram
}

// Samples reads every metric, in path order.
func (r *Registry) Samples() []Sample {
	var out []Sample
	app := r.appName()
	r.walk(func(path []*Namespace, m *metric) {
		s := Sample{Path: pathString(path, m.name), Kind: m.kind, Tags: allTags(app, path, m)}
		if m.kind == KindHistogram {
			s.Hist = m.histogram(false)
		} else {
			s.Value = m.float()
		}
		out = append(out, s)
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func pathString(path []*Namespace, name string) string {
	s := ""
	for _, ns := range path {
		s += ns.name + "/"
	}
	return s + name
}
