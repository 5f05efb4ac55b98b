package console

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

const testConf = `<?xml version="1.0"?>
<app>
  <eventer>
    <config>
      <concurrency>2</concurrency>
    </config>
  </eventer>
  <widgets>
    <widget name="sprocket"/>
  </widgets>
</app>
`

type fixture struct {
	srv  *Server
	ev   *eventer.System
	logs *log.Graph
	conf *config.Config
	file string
	tcp  string // address
	unix string // path
}

// newFixture serves a console with a real eventer, log graph and
// configuration file on TCP loopback and a unix socket.
func newFixture(t testing.TB, mod func(*Options)) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{file: filepath.Join(dir, "app.conf")}
	if err := os.WriteFile(f.file, []byte(testConf), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	f.conf, err = config.Load(f.file, config.Options{NoWriteBack: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.conf.Close() })
	f.ev, err = eventer.New(eventer.Options{Concurrency: 2, Queues: []eventer.QueueOptions{{Name: "work", Concurrency: 2, Max: 8}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.ev.Stop)
	f.logs = log.New(log.WithStderr(&bytes.Buffer{}))
	if err := f.logs.Configure(log.Spec{Name: "recent", Type: "memory", Path: "100,65536"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.logs.Close() })
	opts := Options{Name: "app", Version: "1.2.3", Eventer: f.ev, Logs: f.logs, Config: f.conf}
	if mod != nil {
		mod(&opts)
	}
	f.srv = NewServer(opts)
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.tcp = tln.Addr().String()
	f.unix = filepath.Join(dir, "console.sock")
	uln, err := ListenUnix(f.unix)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, ln := range []net.Listener{tln, uln} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
				t.Errorf("serve: %v", err)
			}
		}()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		wg.Wait()
	})
	return f
}

// peer is a raw client connection that collects what the server sends,
// with telnet commands stripped (and recorded) when telnet is on.
type peer struct {
	t    *testing.T
	conn net.Conn
	mu   sync.Mutex
	text bytes.Buffer
	cmds bytes.Buffer // raw telnet commands received
	done chan struct{}
	err  error
}

func dialPeer(t *testing.T, network, addr string) *peer {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, conn: c, done: make(chan struct{})}
	go p.read()
	t.Cleanup(func() { c.Close(); <-p.done })
	return p
}

func (p *peer) read() {
	defer close(p.done)
	buf := make([]byte, 4096)
	state := 0
	for {
		n, err := p.conn.Read(buf)
		p.mu.Lock()
		for _, b := range buf[:n] {
			switch state {
			case 0:
				if b == tnIAC {
					state = 1
					p.cmds.WriteByte(b)
					continue
				}
				p.text.WriteByte(b)
			case 1:
				p.cmds.WriteByte(b)
				if b == tnIAC {
					p.cmds.Truncate(p.cmds.Len() - 2)
					p.text.WriteByte(tnIAC)
					state = 0
				} else if b >= tnWILL && b <= tnDONT {
					state = 2
				} else if b == tnSB {
					state = 3
				} else {
					state = 0
				}
			case 2:
				p.cmds.WriteByte(b)
				state = 0
			case 3:
				p.cmds.WriteByte(b)
				if b == tnSE {
					state = 0
				}
			}
		}
		p.mu.Unlock()
		if err != nil {
			p.mu.Lock()
			p.err = err
			p.mu.Unlock()
			return
		}
	}
}

func (p *peer) send(s string) {
	p.t.Helper()
	if _, err := p.conn.Write([]byte(s)); err != nil {
		p.t.Fatalf("send %q: %v", s, err)
	}
}

// expect waits until the text received so far matches re, and consumes
// the text up to the end of the match.
func (p *peer) expect(re string) string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	var got string
	ok := poll(func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		loc := rx.FindIndex(p.text.Bytes())
		if loc == nil {
			return false
		}
		got = string(p.text.Bytes()[:loc[1]])
		p.text.Next(loc[1])
		return true
	})
	if !ok {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.t.Fatalf("no %q within %v; received: %q (connection error %v)", re, waitLimit, p.text.String(), p.err)
	}
	return got
}

// closed waits until the server closed the connection.
func (p *peer) closed() {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(waitLimit):
		p.t.Fatalf("connection still open after %v", waitLimit)
	}
}

const waitLimit = 20 * time.Second

// poll calls cond until it holds or waitLimit passes.
func poll(cond func() bool) bool {
	deadline := time.Now().Add(waitLimit)
	for d := time.Millisecond; ; d = min(2*d, 20*time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(d)
	}
}

// telnetHello is what a telnet client answers to the negotiation, plus a
// window size of 100x30.
var telnetHello = string([]byte{tnIAC, tnDO, optEcho, tnIAC, tnDO, optSGA, tnIAC, tnWILL, optNAWS,
	tnIAC, tnSB, optNAWS, 0, 100, 0, 30, tnIAC, tnSE})

// client returns a JSON client on the fixture's unix socket.
func (f *fixture) client(t *testing.T) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, err := Dial(ctx, "unix", f.unix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// run runs cmd through a JSON client and returns its output.
func run(t *testing.T, c *Client, cmd string) string {
	t.Helper()
	var b bytes.Buffer
	if err := c.Run(cmd, &b); err != nil {
		t.Fatalf("%s: %v (output %q)", cmd, err, b.String())
	}
	return b.String()
}
