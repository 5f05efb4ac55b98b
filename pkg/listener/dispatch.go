package listener

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

// Verb is what control_dispatch does with a connection after sniffing
// its first four bytes.
type Verb int

const (
	// VerbClose: not a known command; the connection is closed.
	VerbClose Verb = iota
	// VerbHTTP: an HTTP method; the connection goes to REST.
	VerbHTTP
	// VerbCapa: libmtev's CAPA command; the capabilities document is
	// written and the connection closed.
	VerbCapa
)

// Sniff classifies the first four bytes of a control_dispatch
// connection as libmtev does: "GET ", "HEAD", "POST", "PUT ", "DELE",
// "MERG", "OPTI" are HTTP, and so is "PATC" (libmtev cannot serve
// PATCH here); "CAPA" is the capabilities command; anything else is
// closed.
func Sniff(b []byte) Verb {
	if len(b) < 4 {
		return VerbClose
	}
	switch string(b[:4]) {
	case "GET ", "HEAD", "POST", "PUT ", "DELE", "MERG", "OPTI", "PATC":
		return VerbHTTP
	case "CAPA":
		return VerbCapa
	}
	return VerbClose
}

// commands are the protocols control_dispatch lists in /capa.
var dispatchCommands = []rest.Command{
	{Code: 0x47455420, Name: "mtev_wire_rest_api", Version: "1.0"},   // "GET "
	{Code: 0x48454144, Name: "mtev_wire_rest_api", Version: "1.0"},   // "HEAD"
	{Code: 0x504f5354, Name: "mtev_wire_rest_api", Version: "1.0"},   // "POST"
	{Code: 0x50555420, Name: "mtev_wire_rest_api", Version: "1.0"},   // "PUT "
	{Code: 0x44454c45, Name: "mtev_wire_rest_api", Version: "1.0"},   // "DELE"
	{Code: 0x4d455247, Name: "mtev_wire_rest_api", Version: "1.0"},   // "MERG"
	{Code: 0x4f505449, Name: "mtev_wire_rest_api", Version: "1.0"},   // "OPTI"
	{Code: 0x50415443, Name: "mtev_wire_rest_api", Version: "1.0"},   // "PATC"
	{Code: 0x43415041, Name: "capabilities_transit", Version: "1.0"}, // "CAPA"
}

// dispatch is control_dispatch: one port, the protocol chosen by ALPN
// or by the first bytes.
type dispatch struct {
	router  *rest.Router
	http    *rest.Server
	tls     *tls.Config
	sniffTO time.Duration
	conns   *chanListener
	mu      sync.Mutex
	ln      net.Listener
	wg      sync.WaitGroup
	closing chan struct{}
}

func newDispatch(spec *Spec) (Server, error) {
	if spec.Router == nil {
		return nil, fmt.Errorf("%s needs a router", spec.Type)
	}
	o, err := HTTPOptions(spec)
	if err != nil {
		return nil, err
	}
	d := &dispatch{router: spec.Router, http: rest.NewServer(spec.Router, o), tls: o.TLS, closing: make(chan struct{})}
	d.sniffTO = o.ReadHeaderTimeout
	if d.sniffTO == 0 {
		d.sniffTO = 10 * time.Second
	}
	return d, nil
}

func (d *dispatch) Serve(ln net.Listener) error {
	d.mu.Lock()
	d.ln = ln
	d.conns = &chanListener{addr: ln.Addr(), c: make(chan net.Conn), done: make(chan struct{})}
	d.mu.Unlock()
	httpDone := make(chan error, 1)
	go func() { httpDone <- d.http.ServeConns(d.conns) }()
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-d.closing:
				return <-httpDone
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			d.conns.Close()
			<-httpDone
			return err
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.handle(c)
		}()
	}
}

func (d *dispatch) handle(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(d.sniffTO))
	if d.tls != nil {
		tc := tls.Server(c, d.tls)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p == "h2" || p == "http/1.1" {
			_ = c.SetDeadline(time.Time{})
			d.conns.push(tc)
			return
		}
		c = tc
	}
	br := bufio.NewReaderSize(c, 4096)
	head, err := br.Peek(4)
	if err != nil {
		c.Close()
		return
	}
	switch Sniff(head) {
	case VerbHTTP:
		_ = c.SetDeadline(time.Time{})
		d.conns.push(&replayConn{Conn: c, r: br})
	case VerbCapa:
		_, _ = c.Write(d.router.CapabilitiesXML())
		c.Close()
	default:
		c.Close()
	}
}

func (d *dispatch) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	ln, conns := d.ln, d.conns
	d.mu.Unlock()
	select {
	case <-d.closing:
	default:
		close(d.closing)
	}
	if ln != nil {
		ln.Close()
	}
	if conns != nil {
		conns.Close()
	}
	err := d.http.Shutdown(ctx)
	d.wg.Wait()
	return err
}

// replayConn gives back the sniffed bytes before the rest of the
// connection; it keeps the TLS state visible.
type replayConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// ConnectionState reports the TLS state of a sniffed TLS connection.
func (c *replayConn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// IsTLS reports whether the connection is TLS.
func (c *replayConn) IsTLS() bool { _, ok := c.Conn.(*tls.Conn); return ok }

// chanListener is a net.Listener fed with connections by push.
type chanListener struct {
	addr net.Addr
	c    chan net.Conn
	once sync.Once
	done chan struct{}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case l.c <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
