package lua

import (
	"fmt"
	"net"
	"testing"
)

// A socket whose peer has shut its side down, with no coroutine reading
// it, leaves the loop idle: it does not spin on the peer's hang-up.
func TestIdleHalfClosedSocketDoesNotSpin(t *testing.T) {
	ev := startEventer(t, 1, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.(*net.TCPConn).CloseWrite()
		c.Read(make([]byte, 10))
	}()
	s := newState(t, ev, 0, Options{})
	loop := ev.Default().Loop(0)
	before := loop.Beats()
	r := runChunk(t, s, fmt.Sprintf(`
		local s = mtev.socket("inet")
		assert(s:connect("127.0.0.1", %d) == 0)
		mtev.sleep(0.3)
		local got = s:read(1)
		s:close()
		return got`, ln.Addr().(*net.TCPAddr).Port))
	if r.err != nil || r.vals[0] != nil {
		t.Fatalf("read after the peer's shutdown: %v %v", r.vals, r.err)
	}
	// An idle loop iterates a few times a second (it waits up to 200 ms);
	// a spinning one tens of thousands of times.
	if n := loop.Beats() - before; n > 1000 {
		t.Fatalf("the loop iterated %d times while the socket sat half-closed", n)
	}
}
