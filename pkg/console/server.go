package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/google/renameio/v2"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

// Options configure a Server. The zero value serves the built-in commands
// that need nothing (help, exit, show version); each dependency left nil
// makes its commands answer that it is not available.
type Options struct {
	// Name is the application name: the prompt is "NAME# " (default
	// "mtev").
	Name string
	// Version is shown by "show version".
	Version string
	// Eventer, Logs and Config back the eventer, log and configure
	// commands.
	Eventer *eventer.System
	Logs    *log.Graph
	Config  *config.Config
	// Runtime backs the commands that act on the process and its
	// supervisor.
	Runtime Runtime
	// Allow lists the networks TCP clients may come from. Empty means
	// loopback only (127.0.0.0/8 and ::1). Unix sockets check the peer's
	// uid instead (SO_PEERCRED: this process's uid or root).
	Allow []netip.Prefix
	// MaxLine bounds an input line; the rest of a longer line is dropped
	// and the line refused. Default 64 KiB.
	MaxLine int
	// History is how many lines a terminal session remembers (default
	// 500, as libmtev).
	History int
	// HistoryFile, when set, keeps terminal history across sessions
	// (libmtev's history_file): a session starts with its last lines and
	// appends each line it reads. Errors reading or writing it are
	// reported to OnError and otherwise ignored.
	HistoryFile string
	// Telnet says when to start telnet negotiation on a stream listener:
	// "auto" (default) negotiates at once on TCP (a stock telnet client
	// expects it) and on unix sockets only when the client starts with a
	// telnet command; "on" always at once; "off" never (plain lines).
	Telnet string
	// OnError receives errors of single connections (never fatal to the
	// server). Nil drops them.
	OnError func(error)
}

// Server serves console sessions on stream listeners (Serve) and on
// websockets (Handler). Its methods are safe for concurrent use.
type Server struct {
	opts   Options
	name   string
	nextID atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]bool
	conns     map[io.Closer]bool
	closing   bool
	wg        sync.WaitGroup
}

// ErrServerClosed is returned by Serve after Shutdown.
// It wraps net.ErrClosed, which listener sets expect from a stopped server.
var ErrServerClosed = fmt.Errorf("console: server closed: %w", net.ErrClosed)

// NewServer returns a server; Serve and Handler start serving.
func NewServer(opts Options) *Server {
	if opts.Name == "" {
		opts.Name = "mtev"
	}
	if opts.MaxLine <= 0 {
		opts.MaxLine = 64 << 10
	}
	if opts.History <= 0 {
		opts.History = 500
	}
	s := &Server{opts: opts, name: opts.Name, listeners: map[net.Listener]bool{}, conns: map[io.Closer]bool{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Options returns the options the server was made with.
func (s *Server) Options() Options { return s.opts }

// Serve accepts connections on ln until Shutdown (it then returns
// ErrServerClosed) or an accept error. Each connection gets a session of
// its own; a misbehaving client never affects the others.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("console: accept: %w", err)
		}
		auth, err := s.admit(conn)
		if err != nil {
			fmt.Fprintf(conn, "%s: %v\r\n", s.name, err)
			conn.Close()
			s.report(err)
			continue
		}
		if !s.track(conn) {
			conn.Close()
			return ErrServerClosed
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(conn)
			defer conn.Close()
			s.serveConn(conn, auth)
		}()
	}
}

func (s *Server) report(err error) {
	if s.opts.OnError != nil {
		s.opts.OnError(err)
	}
}

func (s *Server) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = true
	return true
}

func (s *Server) untrack(c io.Closer) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting, ends every session (the running command's
// context is cancelled and its connection closed) and waits for them, or
// for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("console: shutdown: %w", ctx.Err())
	}
}

// admit checks a new connection: the peer uid on unix sockets, the ACL on
// TCP. It returns how the peer was identified.
func (s *Server) admit(conn net.Conn) (string, error) {
	switch c := conn.(type) {
	case *net.UnixConn:
		uid, err := peerUID(c)
		if err != nil {
			return "", fmt.Errorf("console: peer credentials: %w", err)
		}
		if uid != uint32(os.Geteuid()) && uid != 0 {
			return "", fmt.Errorf("console: uid %d refused: %w", uid, ErrDenied)
		}
		return fmt.Sprintf("uid %d", uid), nil
	case *net.TCPConn:
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil {
			return "", fmt.Errorf("console: peer address: %w", err)
		}
		if !s.allowed(ap.Addr().Unmap()) {
			return "", fmt.Errorf("console: %s refused: %w", ap.Addr(), ErrDenied)
		}
		return "(no auth)", nil
	}
	return "(no auth)", nil
}

// ErrDenied is the reason a client was refused.
var ErrDenied = errors.New("access denied")

func (s *Server) allowed(a netip.Addr) bool {
	if len(s.opts.Allow) == 0 {
		return a.IsLoopback()
	}
	for _, p := range s.opts.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseACL parses a list of CIDRs or addresses ("10.0.0.0/8", "::1").
func ParseACL(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range list {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if !strings.Contains(v, "/") {
			a, err := netip.ParseAddr(v)
			if err != nil {
				return nil, fmt.Errorf("console: acl %q: %w", v, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, fmt.Errorf("console: acl %q: %w", v, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
}

// ListenUnix listens on a unix socket at path with mode 0600, replacing a
// stale socket (one nobody answers on) but never another kind of file.
func ListenUnix(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("console: listen %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("console: listen %s: a file that is not a socket is in the way", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("console: listen %s: another process serves this socket", path)
		}
		os.Remove(path)
	}
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("console: listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("console: listen %s: %w", path, err)
	}
	return ln, nil
}

// serveConn runs one stream session: it decides the protocol from the
// first byte the client sends (telnet command, '{' for JSON lines, else
// plain lines).
func (s *Server) serveConn(conn net.Conn, auth string) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	_, isTCP := conn.(*net.TCPConn)
	negotiate := s.opts.Telnet == "on" || (s.opts.Telnet != "off" && isTCP)
	br := bufio.NewReaderSize(conn, 4096)
	lc := &lineConn{rw: struct {
		io.Reader
		io.Writer
	}{br, conn}, max: s.opts.MaxLine}
	// Everyone gets the banner and a prompt at once (nc, socat and telnet
	// users expect to be greeted); a TCP client is also offered telnet.
	// After the negotiation, "\r ESC[K" erases what a client that is not
	// telnet (nc on a terminal) shows of those bytes.
	if negotiate && lc.writeRaw(append(negotiation[:len(negotiation):len(negotiation)], "\r\x1b[K"...)) != nil {
		return
	}
	if _, err := lc.Write([]byte(fmt.Sprintf("%s: %s\r\n%s# ", s.name, auth, s.name))); err != nil {
		return
	}
	first, err := br.Peek(1)
	if err != nil {
		return
	}
	switch {
	case first[0] == tnIAC:
		if !negotiate && lc.writeRaw(negotiation) != nil {
			return
		}
		s.serveTelnet(ctx, lc)
	case first[0] == '{':
		s.serveJSONLines(ctx, lc)
	default:
		s.servePlain(ctx, lc, br)
	}
}

// servePlain reads lines and answers with output and a prompt: what nc or
// socat see.
func (s *Server) servePlain(ctx context.Context, lc *lineConn, br *bufio.Reader) {
	sess := newSession(s, ctx, lc)
	in := bufio.NewReader(lc)
	sess.waitInput = func(ctx context.Context) error {
		_, err := in.ReadByte()
		return err
	}
	for {
		line, err := in.ReadString('\n')
		if err != nil && line == "" {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		if lc.overflowed {
			lc.overflowed = false
			sess.Printf("error: line longer than %d bytes ignored\n", s.opts.MaxLine)
		} else if err := sess.Execute(line); err != nil {
			sess.Printf("error: %v\n", err)
		}
		if sess.Closed() {
			return
		}
		sess.Write([]byte(sess.Prompt()))
	}
}

// serveTelnet runs a line-edited session through x/term: history, tab
// completion, window size from NAWS.
func (s *Server) serveTelnet(ctx context.Context, lc *lineConn) {
	var t *term.Terminal
	var tmu sync.Mutex
	lc.telnet = newTelnetDecoder(func(b []byte) { lc.writeRaw(b) }, func(w, h int) {
		tmu.Lock()
		tt := t
		tmu.Unlock()
		if tt != nil {
			tt.SetSize(w, h)
		}
	})
	tmu.Lock()
	t = term.NewTerminal(&validUTF8{r: lc, w: lc}, s.name+"# ")
	tmu.Unlock()
	t.History = s.newHistory()
	sess := newSession(s, ctx, t)
	sess.waitInput = func(ctx context.Context) error {
		var b [1]byte
		_, err := lc.Read(b[:])
		return err
	}
	var lastTab string
	t.AutoCompleteCallback = func(line string, pos int, key rune) (string, int, bool) {
		if key != '\t' {
			lastTab = ""
			return "", 0, false
		}
		head := line[:pos]
		cands := sess.Complete(head)
		if len(cands) == 0 {
			return "", 0, false
		}
		start := len(head)
		for start > 0 && head[start-1] != ' ' {
			start--
		}
		word := head[start:]
		if len(cands) == 1 {
			nl := head[:start] + cands[0] + " " + strings.TrimLeft(line[pos:], " ")
			return nl, start + len(cands[0]) + 1, true
		}
		common := commonPrefix(cands)
		if len(common) > len(word) {
			nl := head[:start] + common + line[pos:]
			return nl, start + len(common), true
		}
		if lastTab == head {
			// Second tab: list the matches above the prompt.
			t.Write([]byte(strings.Join(cands, "  ") + "\n"))
		}
		lastTab = head
		return line, pos, true
	}
	// The banner and a plain prompt went out before the client answered:
	// start the editor on a clean line.
	lc.Write([]byte("\r\x1b[K"))
	for {
		line, err := t.ReadLine()
		if err != nil {
			return
		}
		if lc.overflowed {
			lc.overflowed = false
			sess.Printf("error: line longer than %d bytes ignored\n", s.opts.MaxLine)
			continue
		}
		if err := sess.Execute(line); err != nil {
			sess.Printf("error: %v\n", err)
		}
		if sess.Closed() {
			return
		}
		t.SetPrompt(sess.Prompt())
	}
}

func commonPrefix(c []string) string {
	if len(c) == 0 {
		return ""
	}
	p := c[0]
	for _, s := range c[1:] {
		for !strings.HasPrefix(strings.ToLower(s), strings.ToLower(p)) {
			p = p[:len(p)-1]
		}
	}
	return p
}

// history is a bounded ring of input lines for term.Terminal, kept in a
// file when one is configured.
type history struct {
	lines []string
	max   int
	file  string
	srv   *Server
}

func (s *Server) newHistory() *history {
	h := &history{max: s.opts.History, file: s.opts.HistoryFile, srv: s}
	if h.file == "" {
		return h
	}
	b, err := os.ReadFile(h.file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		s.report(fmt.Errorf("console: history: %w", err))
	}
	all := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for _, l := range all {
		h.push(l)
	}
	if len(all) > 2*h.max {
		// Keep the file about as long as the history it holds.
		if err := renameio.WriteFile(h.file, []byte(strings.Join(h.lines, "\n")+"\n"), 0o600); err != nil {
			s.report(fmt.Errorf("console: history: %w", err))
		}
	}
	return h
}

func (h *history) push(l string) bool {
	if l == "" || (len(h.lines) > 0 && h.lines[len(h.lines)-1] == l) {
		return false
	}
	h.lines = append(h.lines, l)
	if len(h.lines) > h.max {
		h.lines = h.lines[len(h.lines)-h.max:]
	}
	return true
}

func (h *history) Add(l string) {
	if !h.push(l) || h.file == "" {
		return
	}
	f, err := os.OpenFile(h.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err == nil {
		_, err = f.WriteString(l + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		h.srv.report(fmt.Errorf("console: history: %w", err))
	}
}

func (h *history) Len() int { return len(h.lines) }

// At returns the idx-th newest line (0: the newest).
func (h *history) At(idx int) string { return h.lines[len(h.lines)-1-idx] }

// SocketPath is where the console of service listens by default: beside
// the supervisor's control socket in the state directory.
func SocketPath(stateDir, service string) string {
	return filepath.Join(stateDir, "run", service+".console")
}

// validUTF8 replaces bytes that are not UTF-8 with '?' on the way to the
// line editor, which otherwise stops at an invalid byte until more input
// arrives, and turns ^C into "clear the line". A rune split across reads is
// kept for the next read.
type validUTF8 struct {
	r    io.Reader
	w    io.Writer
	tail []byte
}

func (v *validUTF8) Write(p []byte) (int, error) { return v.w.Write(p) }

func (v *validUTF8) Read(p []byte) (int, error) {
	if len(p) < 16 {
		return v.r.Read(p)
	}
	// Each input byte becomes at most two (^C), a kept tail included.
	buf := make([]byte, (len(p)-2*len(v.tail))/2)
	n, err := v.r.Read(buf)
	data := append(v.tail, buf[:n]...)
	v.tail = nil
	out := p[:0]
	for len(data) > 0 {
		if !utf8.FullRune(data) {
			if err == nil {
				v.tail = append([]byte(nil), data...)
				break
			}
		}
		r, size := utf8.DecodeRune(data)
		switch {
		case r == utf8.RuneError && size <= 1:
			out = append(out, '?')
		case r == 3:
			// ^C clears the line (^E ^U) instead of ending the
			// session, as x/term would.
			out = append(out, 5, 21)
		default:
			out = append(out, data[:size]...)
		}
		data = data[size:]
	}
	if len(out) == 0 && err == nil && v.tail != nil {
		return v.Read(p)
	}
	return len(out), err
}
