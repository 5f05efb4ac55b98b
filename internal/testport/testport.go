// Package testport hands out ports to tests that must name a port before
// a process of theirs binds it (a configuration file, a command line).
//
// A port the kernel picked for a listener that was then closed comes from
// the ephemeral range, where the next outgoing connection of any process
// may be given it before the test's process binds it, and two such picks
// may even be the same port. Ports here are drawn instead at random from
// 20000-32000, below Linux's default ephemeral range (32768-60999); each
// is checked free for TCP on every address and for UDP (memberlist uses
// both), and no port is handed out twice in one process.
package testport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

const (
	lo = 20000
	hi = 32000
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Free returns n distinct free ports.
func Free(n int) ([]int, error) {
	mu.Lock()
	defer mu.Unlock()
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries > 10*(hi-lo) {
			return out, errors.New("testport: no free ports between 20000 and 32000")
		}
		p := lo + rand.IntN(hi-lo)
		if given[p] || !free(p) {
			continue
		}
		given[p] = true
		out = append(out, p)
	}
	return out, nil
}

func free(p int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", fmt.Sprintf(":%d", p))
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// One returns a free port, or ends the test.
func One(t testing.TB) int {
	t.Helper()
	return N(t, 1)[0]
}

// N returns n distinct free ports, or ends the test.
func N(t testing.TB, n int) []int {
	t.Helper()
	ps, err := Free(n)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
