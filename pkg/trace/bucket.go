package trace

import (
	"slices"
	"sort"
	"strconv"
)

// Bucket is a group of goroutines with identical stacks: the same state,
// wait reason, frames (function, file, line) and creator. Wait times may
// differ.
type Bucket struct {
	State      string
	WaitReason string
	Frames     []Frame
	CreatedBy  *Frame
	// IDs of the goroutines in the bucket, ascending.
	IDs []int64
	// MinWaitMS and MaxWaitMS bound the wait times in the bucket.
	MinWaitMS, MaxWaitMS int64
	// Culprit is set when the bucket holds the culprit goroutine.
	Culprit bool
}

// Count is the number of goroutines in the bucket.
func (b *Bucket) Count() int { return len(b.IDs) }

// Buckets groups gs into buckets of identical stacks, like panicparse's
// aggregation. The bucket holding a culprit comes first, then larger
// buckets before smaller ones, then by lowest goroutine id. gs is not
// modified.
func Buckets(gs []Goroutine) []Bucket {
	index := make(map[string]int)
	var out []Bucket
	var key []byte
	for i := range gs {
		g := &gs[i]
		key = appendStackKey(key[:0], g)
		bi, ok := index[string(key)] // no allocation for the lookup
		if !ok {
			bi = len(out)
			index[string(key)] = bi
			out = append(out, Bucket{
				State: g.State, WaitReason: g.WaitReason, Frames: g.Frames, CreatedBy: g.CreatedBy,
				MinWaitMS: g.WaitMS, MaxWaitMS: g.WaitMS,
			})
		}
		b := &out[bi]
		b.IDs = append(b.IDs, g.ID)
		b.Culprit = b.Culprit || g.Culprit
		b.MinWaitMS = min(b.MinWaitMS, g.WaitMS)
		b.MaxWaitMS = max(b.MaxWaitMS, g.WaitMS)
	}
	for i := range out {
		slices.Sort(out[i].IDs)
	}
	sort.SliceStable(out, func(i, j int) bool {
		l, r := &out[i], &out[j]
		if l.Culprit != r.Culprit {
			return l.Culprit
		}
		if len(l.IDs) != len(r.IDs) {
			return len(l.IDs) > len(r.IDs)
		}
		return l.IDs[0] < r.IDs[0]
	})
	return out
}

func appendStackKey(b []byte, g *Goroutine) []byte {
	b = append(b, g.State...)
	b = append(b, '|')
	b = append(b, g.WaitReason...)
	for _, f := range g.Frames {
		b = appendFrameKey(b, f)
	}
	if g.CreatedBy != nil {
		b = append(b, "\ncreated-by"...)
		b = appendFrameKey(b, *g.CreatedBy)
	}
	return b
}

func appendFrameKey(b []byte, f Frame) []byte {
	b = append(b, '\n')
	b = append(b, f.Function...)
	b = append(b, ' ')
	b = append(b, f.File...)
	b = append(b, ':')
	return strconv.AppendInt(b, int64(f.Line), 10)
}
