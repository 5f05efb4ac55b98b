package console

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestBadInput: malformed telnet, a 1 MiB line and clients leaving in the
// middle of a command never disturb another session.
func TestBadInput(t *testing.T) {
	f := newFixture(t, nil)
	watcher := dialPeer(t, "unix", f.unix)
	watcher.expect(`app# `)
	check := func(when string) {
		t.Helper()
		watcher.send("show version\n")
		if out := watcher.expect(`app# `); !strings.Contains(out, "build sysname:") {
			t.Fatalf("%s: the other session answered %q", when, out)
		}
	}

	// Malformed telnet: an unterminated subnegotiation longer than any
	// option, IAC followed by junk, a subnegotiation with IAC x inside,
	// an unknown option; the session goes on afterwards.
	p := dialPeer(t, "tcp", f.tcp)
	p.expect(`app# `)
	junk := []byte{tnIAC, tnSB, optNAWS}
	junk = append(junk, bytes.Repeat([]byte{7}, 500)...)
	junk = append(junk, tnIAC, 17, tnIAC, tnSE, tnIAC, 3, tnIAC, tnSB, 24, tnIAC, 9, tnIAC, tnSE,
		tnIAC, tnDO, 99, tnIAC, tnWILL, 98, tnIAC, tnDONT, optEcho, tnIAC, tnIP)
	p.send(string(junk))
	if !poll(func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return bytes.Contains(p.cmds.Bytes(), []byte{tnIAC, tnWONT, 99}) && bytes.Contains(p.cmds.Bytes(), []byte{tnIAC, tnDONT, 98})
	}) {
		t.Errorf("unknown options not refused; commands %v", p.cmds.Bytes())
	}
	check("malformed telnet")

	// IAC IP is ^C, which clears the line: the session goes on.
	p.send("show ver\x03exit\r")
	p.closed()

	// A 1 MiB line on a plain session is refused; the session goes on.
	q := dialPeer(t, "unix", f.unix)
	q.expect(`app# `)
	q.send(strings.Repeat("x", 1<<20) + "\nshow version\n")
	q.expect(`error: line longer than 65536 bytes ignored\napp# `)
	q.expect(`build sysname:`)
	check("1 MiB line")

	// The same on the JSON protocol.
	c := f.client(t)
	var b bytes.Buffer
	err := c.Run("show conf "+strings.Repeat("y", 1<<20), &b)
	if err == nil || !strings.Contains(err.Error(), "line too long") {
		t.Errorf("1 MiB JSON request: %v", err)
	}
	if out := run(t, c, "show version"); !strings.Contains(out, "build sysname:") {
		t.Errorf("after a long JSON line: %q", out)
	}

	// A telnet client sending a 1 MiB line: the editor keeps at most 4096
	// characters, and the session answers afterwards.
	r := dialPeer(t, "tcp", f.tcp)
	r.expect(`app# `)
	r.send(telnetHello)
	r.send(strings.Repeat("z", 1<<20) + "\r")
	r.expect(`error: line longer than 65536 bytes ignored\r\napp# `)
	r.send("show version\r")
	r.expect(`build sysname:`)
	check("1 MiB telnet line")

	// Clients leaving mid-command: one following a log, one mid-line.
	for i := 0; i < 3; i++ {
		l := dialPeer(t, "unix", f.unix)
		l.expect(`app# `)
		l.send("log connect error\n")
		l.expect(`following error`)
		l.conn.Close()
		m := dialPeer(t, "tcp", f.tcp)
		m.expect(`app# `)
		m.send(telnetHello + "show ver")
		m.conn.Close()
	}
	f.logs.Facility("error").Log().Msg("after the followers left")
	check("clients leaving")
}

// TestLogConnect follows a facility until a key arrives.
func TestLogConnect(t *testing.T) {
	f := newFixture(t, nil)
	p := dialPeer(t, "tcp", f.tcp)
	p.expect(`app# `)
	p.send(telnetHello)
	p.send("log connect error\r")
	p.expect(`following error; press any key to stop\r\n`)
	if !poll(func() bool {
		f.logs.Facility("error").Log().Msg("live line")
		p.mu.Lock()
		defer p.mu.Unlock()
		return strings.Contains(p.text.String(), "live line")
	}) {
		t.Fatal("the followed line never arrived")
	}
	p.send("q")
	p.expect(`app# `)
	// After the key, lines no longer arrive: the next command's output
	// follows the prompt directly.
	f.logs.Facility("error").Log().Msg("not followed")
	p.send("show version\r")
	out := p.expect(`app# `)
	if strings.Contains(out, "not followed") {
		t.Errorf("a line arrived after the follow ended: %q", out)
	}
}

// TestACL: TCP clients outside Allow are refused with a message; unix
// clients of another uid are refused (SO_PEERCRED).
func TestACL(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	p := dialPeer(t, "tcp", f.tcp)
	p.expect(`app: console: 127\.0\.0\.1 refused: access denied`)
	p.closed()

	acl, err := ParseACL([]string{"10.1.0.0/16", "::1", " "})
	if err != nil || len(acl) != 2 || acl[1].Bits() != 128 {
		t.Errorf("ParseACL: %v %v", acl, err)
	}
	if _, err := ParseACL([]string{"10.0.0.0/33"}); err == nil {
		t.Error("ParseACL accepted /33")
	}

	if os.Geteuid() != 0 {
		t.Skip("the peer uid check needs root to connect as another user")
	}
	// The socket is 0600; open it up so that only the uid check stands.
	if err := os.Chmod(f.unix, 0o666); err != nil {
		t.Fatal(err)
	}
	openUp(filepath.Dir(f.unix))
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "console.test")
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	openUp(filepath.Dir(bin))
	cmd := exec.Command(bin, "-test.run=^TestPeerProcess$")
	cmd.Env = append(os.Environ(), "CONSOLE_TEST_PEER="+f.unix)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("peer process: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "refused: access denied") {
		t.Errorf("a client of uid 65534 got %q", out)
	}
}

// openUp lets any user through dir and its parent (t.TempDir's).
func openUp(dir string) {
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
}

// TestPeerProcess connects to the socket in CONSOLE_TEST_PEER and prints
// what it receives (run by TestACL as another user).
func TestPeerProcess(t *testing.T) {
	path := os.Getenv("CONSOLE_TEST_PEER")
	if path == "" {
		t.Skip("run by TestACL as another user")
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b bytes.Buffer
	b.ReadFrom(c)
	os.Stdout.Write(b.Bytes())
}

// FuzzTelnet feeds the telnet decoder arbitrary input in arbitrary pieces:
// it never panics, keeps subnegotiations bounded, and escaped data always
// comes back unchanged.
func FuzzTelnet(f *testing.F) {
	f.Add([]byte(telnetHello+"show version\r\n"), []byte("x\xff\xffy"), uint8(3))
	f.Add([]byte{tnIAC, tnSB, optNAWS, 0, 80, 0, 24, tnIAC, tnSE}, []byte{}, uint8(1))
	f.Add([]byte{tnIAC, tnSB, tnIAC, tnIAC, tnIAC}, []byte("\r\x00\r\n"), uint8(2))
	f.Add([]byte{tnIAC, tnDO, 5, tnIAC, tnWILL, 6, tnIAC, tnDONT, 1, tnIAC, tnWONT, 31}, []byte("\xff"), uint8(7))
	f.Fuzz(func(t *testing.T, in, data []byte, split uint8) {
		var replies int
		d := newTelnetDecoder(func(b []byte) { replies++ }, func(w, h int) {
			if w <= 0 || h <= 0 || w > 65535 || h > 65535 {
				t.Errorf("window %dx%d", w, h)
			}
		})
		step := int(split)%16 + 1
		for i := 0; i < len(in); i += step {
			d.feed(in[i:min(i+step, len(in))], nil)
			if len(d.sb) > maxSB {
				t.Fatalf("subnegotiation grew to %d", len(d.sb))
			}
		}
		if replies > len(in) {
			t.Errorf("%d replies to %d bytes", replies, len(in))
		}
		// Data escaped by the server's writer decodes to itself (CR NUL
		// aside, which telnet defines as CR).
		if bytes.Contains(data, []byte("\r\x00")) {
			return
		}
		e := newTelnetDecoder(nil, nil)
		var out []byte
		enc := escapeIAC(data)
		for i := 0; i < len(enc); i += step {
			out = e.feed(enc[i:min(i+step, len(enc))], out)
		}
		if !bytes.Equal(out, data) {
			t.Errorf("escaped %q decoded to %q", data, out)
		}
	})
}
