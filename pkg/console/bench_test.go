package console

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkCommand measures one command round trip ("help show": lookup,
// help text, output) on each transport, against a bare unix-socket echo of
// a line of the same size (base-unix-echo: the cost of the socket alone).
func BenchmarkCommand(b *testing.B) {
	f := newFixture(b, nil)
	b.Run("json-unix", func(b *testing.B) {
		c, err := Dial(b.Context(), "unix", f.unix)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		for b.Loop() {
			if err := c.Run("help show", io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plain-unix", func(b *testing.B) {
		conn, r := dialUntilPrompt(b, "unix", f.unix, "")
		defer conn.Close()
		for b.Loop() {
			conn.Write([]byte("help show\n"))
			readUntil(b, r, "app# ")
		}
	})
	b.Run("telnet-tcp", func(b *testing.B) {
		conn, r := dialUntilPrompt(b, "tcp", f.tcp, telnetHello)
		defer conn.Close()
		for b.Loop() {
			conn.Write([]byte("help show\r"))
			readUntil(b, r, "app# ")
		}
	})
	b.Run("base-unix-echo", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "echo.sock")
		ln, err := net.Listen("unix", path)
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadBytes('\n')
				if err != nil {
					return
				}
				c.Write(line)
			}
		}()
		conn, err := net.Dial("unix", path)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		line := []byte(strings.Repeat("x", 200) + "\n")
		for b.Loop() {
			conn.Write(line)
			if _, err := r.ReadBytes('\n'); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkComplete measures completing the last word of a line.
func BenchmarkComplete(b *testing.B) {
	s := newSession(NewServer(Options{}), b.Context(), io.Discard)
	for b.Loop() {
		if len(s.Complete("show eventer debug j")) != 1 {
			b.Fatal("no completion")
		}
	}
}

func dialUntilPrompt(b *testing.B, network, addr, hello string) (net.Conn, *bufio.Reader) {
	conn, err := net.Dial(network, addr)
	if err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReader(conn)
	readUntil(b, r, "app# ")
	if hello != "" {
		conn.Write([]byte(hello))
		readUntil(b, r, "app# ")
	}
	return conn, r
}

func readUntil(b *testing.B, r *bufio.Reader, marker string) {
	var got []byte
	for !bytes.HasSuffix(got, []byte(marker)) {
		c, err := r.ReadByte()
		if err != nil {
			b.Fatalf("read: %v after %q", err, got)
		}
		got = append(got, c)
	}
}
