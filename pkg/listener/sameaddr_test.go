package listener

import (
	"net"
	"testing"
)

// An inherited socket is matched to a listener by address when it has no
// name: the same address and port, or both on every address.
func TestSameAddr(t *testing.T) {
	tcp := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	cases := []struct {
		network, want string
		got           net.Addr
		same          bool
	}{
		{"tcp4", "0.0.0.0:8080", tcp("0.0.0.0:8080"), true},
		{"tcp4", "0.0.0.0:8080", tcp("[::]:8080"), true}, // dual stack, as tcp://:8080
		{"tcp6", "[::]:8080", tcp("0.0.0.0:8080"), true},
		{"tcp4", "0.0.0.0:8080", tcp("0.0.0.0:8081"), false},
		{"tcp4", "0.0.0.0:8080", tcp("127.0.0.1:8080"), false},
		{"tcp4", "127.0.0.1:8080", tcp("0.0.0.0:8080"), false},
		{"tcp4", "127.0.0.1:8080", tcp("[::ffff:127.0.0.1]:8080"), true},
		{"tcp4", "0.0.0.0:0", tcp("0.0.0.0:0"), false}, // port 0 names no socket
		{"unix", "/run/a.sock", &net.UnixAddr{Name: "/run/a.sock", Net: "unix"}, true},
		{"unix", "/run/a.sock", &net.UnixAddr{Name: "/run/b.sock", Net: "unix"}, false},
		{"unix", "/run/a.sock", tcp("0.0.0.0:8080"), false},
	}
	for _, c := range cases {
		if got := sameAddr(c.network, c.want, c.got); got != c.same {
			t.Errorf("sameAddr(%s %s, %s) = %v, want %v", c.network, c.want, c.got, got, c.same)
		}
	}
}
