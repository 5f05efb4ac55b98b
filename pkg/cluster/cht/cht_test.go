package cht

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node%d", i+1)
	}
	return out
}

func mustRing(t testing.TB, ns []string) *Ring {
	t.Helper()
	r, err := FromNames(ns...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBalance is cht_spec.lua's "should balance relatively well".
func TestBalance(t *testing.T) {
	for n := 1; n <= 20; n++ {
		r := mustRing(t, names(n))
		fair := 1 / float64(n)
		total, worst := 0.0, 0.0
		for _, name := range names(n) {
			o := r.Owned(name)
			total += o
			worst = max(worst, math.Abs(fair-o))
		}
		if !(worst < 1/float64(n)) {
			t.Errorf("%d nodes: a node's share is %.4f off the fair %.4f", n, worst, fair)
		}
		if math.Abs(total-1) > 1e-9 {
			t.Errorf("%d nodes: shares sum to %v", n, total)
		}
	}
}

// TestBalanceByKeys checks the shares against real keys, not only arcs.
func TestBalanceByKeys(t *testing.T) {
	r := mustRing(t, names(10))
	counts := map[string]int{}
	const keys = 100000
	for i := range keys {
		o, ok := r.LookupString(fmt.Sprintf("key-%d", i))
		if !ok {
			t.Fatal("no owner")
		}
		counts[o]++
	}
	for _, name := range names(10) {
		got := float64(counts[name]) / keys
		if math.Abs(got-r.Owned(name)) > 0.01 {
			t.Errorf("%s: %.4f of the keys, %.4f of the ring", name, got, r.Owned(name))
		}
	}
}

func owners(r *Ring, keys []string) map[string]string {
	m := map[string]string{}
	for _, k := range keys {
		m[k], _ = r.LookupString(k)
	}
	return m
}

func sharts() []string {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("shart%d", i+1)
	}
	return keys
}

// TestGrow is cht_spec.lua's "should control redistribution when growing".
func TestGrow(t *testing.T) {
	keys := sharts()
	o8 := owners(mustRing(t, names(8)), keys)
	o9 := owners(mustRing(t, names(9)), keys)
	moved := 0
	for _, k := range keys {
		if o8[k] != o9[k] {
			moved++
			if o9[k] != "node9" {
				t.Errorf("%s moved from %s to %s, not to the new node", k, o8[k], o9[k])
			}
		}
	}
	if moved == 0 {
		t.Error("the new node took no key")
	}
}

// TestShrink is cht_spec.lua's "should control redistribution when shrinking".
func TestShrink(t *testing.T) {
	keys := sharts()
	o8 := owners(mustRing(t, names(8)), keys)
	o7 := owners(mustRing(t, names(7)), keys)
	for _, k := range keys {
		if o8[k] != o7[k] && o8[k] != "node8" {
			t.Errorf("%s moved from %s to %s though its node stayed", k, o8[k], o7[k])
		}
	}
}

// TestMinimalMovementRandom removes and adds random nodes of random rings.
func TestMinimalMovementRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := sharts()
	for range 50 {
		n := 2 + rng.IntN(30)
		ns := make([]string, n)
		for i := range ns {
			ns[i] = fmt.Sprintf("%08x-%d", rng.Uint32(), i)
		}
		gone := rng.IntN(n)
		smaller := slices.Delete(slices.Clone(ns), gone, gone+1)
		before, after := owners(mustRing(t, ns), keys), owners(mustRing(t, smaller), keys)
		for _, k := range keys {
			if before[k] != after[k] && before[k] != ns[gone] {
				t.Fatalf("removing %s moved %s from %s to %s", ns[gone], k, before[k], after[k])
			}
		}
	}
}

func TestLookupN(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 5, 64, 65, 200} {
		r := mustRing(t, names(n))
		for range 200 {
			key := fmt.Appendf(nil, "k%d", rng.Uint64())
			want := 1 + rng.IntN(n+2)
			got := r.LookupN(key, want)
			if len(got) != min(want, n) {
				t.Fatalf("%d nodes, LookupN(%d): %d owners", n, want, len(got))
			}
			seen := map[string]bool{}
			for _, o := range got {
				if seen[o] {
					t.Fatalf("%d nodes: LookupN(%s, %d) = %v repeats %s", n, key, want, got, o)
				}
				seen[o] = true
			}
			if first, _ := r.Lookup(key); got[0] != first {
				t.Fatalf("LookupN starts with %s, Lookup says %s", got[0], first)
			}
		}
	}
}

// TestLookupNStable: the replicas of a key are stable when an unrelated
// node leaves: the survivors keep their order.
func TestLookupNStable(t *testing.T) {
	ns := names(10)
	r10 := mustRing(t, ns)
	r9 := mustRing(t, ns[:9])
	for _, k := range sharts() {
		a := r10.LookupN([]byte(k), 3)
		b := r9.LookupN([]byte(k), 3)
		a = slices.DeleteFunc(a, func(s string) bool { return s == "node10" })
		if !slices.Equal(a, b[:len(a)]) {
			t.Fatalf("%s: %v then %v", k, a, b)
		}
	}
}

func TestWeight(t *testing.T) {
	r, err := New([]Node{{Name: "a", Weight: 256}, {Name: "b", Weight: 128}, {Name: "c", Weight: 128}})
	if err != nil {
		t.Fatal(err)
	}
	if a := r.Owned("a"); a < 0.4 || a > 0.6 {
		t.Errorf("a has twice the weight of b and c but owns %.3f", a)
	}
	if !math.IsNaN(r.Owned("zz")) {
		t.Error("unknown node owns something")
	}
}

func TestOrderIndependent(t *testing.T) {
	ns := names(12)
	a := mustRing(t, ns)
	rev := slices.Clone(ns)
	slices.Reverse(rev)
	b := mustRing(t, rev)
	for _, k := range sharts() {
		x, _ := a.LookupString(k)
		y, _ := b.LookupString(k)
		if x != y {
			t.Fatalf("%s: %s vs %s", k, x, y)
		}
	}
}

func TestBadNodes(t *testing.T) {
	for _, tc := range [][]Node{
		{{Name: ""}},
		{{Name: "a"}, {Name: "a"}},
		{{Name: "a", Weight: -1}},
		{{Name: "a", Weight: 1<<16 + 1}},
	} {
		if _, err := New(tc); !errors.Is(err, ErrNode) {
			t.Errorf("%v: err %v, want ErrNode", tc, err)
		}
	}
}

func TestEmpty(t *testing.T) {
	var r *Ring
	if _, ok := r.LookupString("x"); ok {
		t.Error("nil ring has an owner")
	}
	e := mustRing(t, nil)
	if _, ok := e.LookupString("x"); ok || e.LookupN([]byte("x"), 3) != nil {
		t.Error("empty ring has owners")
	}
	one := mustRing(t, []string{"solo"})
	if one.Owned("solo") != 1 {
		t.Errorf("single node owns %v", one.Owned("solo"))
	}
}

func FuzzLookupN(f *testing.F) {
	f.Add([]byte("key"), uint8(3), uint8(5))
	f.Fuzz(func(t *testing.T, key []byte, nodes, n uint8) {
		r := mustRing(t, names(int(nodes%40)))
		got := r.LookupN(key, int(n%50))
		if len(got) != min(int(n%50), int(nodes%40)) {
			t.Fatalf("%d owners", len(got))
		}
		seen := map[string]bool{}
		for _, o := range got {
			if seen[o] {
				t.Fatalf("repeat %s", o)
			}
			seen[o] = true
		}
	})
}
