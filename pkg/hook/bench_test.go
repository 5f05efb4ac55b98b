package hook

import "testing"

var sink int

//go:noinline
func direct(v int) Result { sink += v; return Continue }

// BenchmarkHookInvoke is the cost of a hook point with 0, 1 and 4
// functions attached, beside calling the one function directly.
func BenchmarkHookInvoke(b *testing.B) {
	b.Run("base-direct-call", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			direct(i)
		}
	})
	for _, n := range []int{0, 1, 4} {
		p := New[int]("bench", "")
		for range n {
			p.Register("f", direct)
		}
		b.Run(map[int]string{0: "attached-0", 1: "attached-1", 4: "attached-4"}[n], func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				p.Invoke(i)
			}
		})
	}
}
