package console

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

// Request is one message of the JSON protocol (libmtev's websocket
// console): a command as words, or a completion request.
type Request struct {
	ID       json.RawMessage `json:"id"`
	Command  []string        `json:"command"`
	Complete bool            `json:"complete,omitempty"`
}

// Reply is one message the server sends. libmtev's forms:
//
//	{"cmdid":"0","text":"..."}     command output
//	{"id":"7","completion":[...]}  completion candidates
//	{"id":"7","error":"..."}       the command failed
//	{"id":0,"log":{...}}           a followed log line
//
// and one of ours, ending every request: {"id":"7","done":true} (with
// "closed":true when the session ended).
type Reply struct {
	CmdID      string          `json:"cmdid,omitempty"`
	ID         any             `json:"id,omitempty"`
	Text       *string         `json:"text,omitempty"`
	Completion []string        `json:"completion,omitempty"`
	Error      string          `json:"error,omitempty"`
	Log        json.RawMessage `json:"log,omitempty"`
	Done       bool            `json:"done,omitempty"`
	Closed     bool            `json:"closed,omitempty"`
}

// idString renders a request id as libmtev does: a string.
func idString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return strings.TrimSpace(string(raw))
}

// jsonPeer runs JSON requests arriving on msgs against one session.
type jsonPeer struct {
	s    *Session
	send func(Reply) error
	msgs chan []byte
}

func (s *Server) newJSONPeer(ctx context.Context, send func(Reply) error) *jsonPeer {
	var buf bytes.Buffer
	p := &jsonPeer{send: send, msgs: make(chan []byte, 16)}
	p.s = newSession(s, ctx, &buf)
	p.s.waitInput = func(ctx context.Context) error {
		select {
		case <-p.msgs:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.s.flush = func() {
		p.s.wmu.Lock()
		text := buf.String()
		buf.Reset()
		p.s.wmu.Unlock()
		if text != "" {
			send(Reply{CmdID: "0", Text: &text})
		}
	}
	p.s.logLine = func(line []byte) {
		line = bytes.TrimSpace(line)
		if !json.Valid(line) {
			line, _ = json.Marshal(string(line))
		}
		send(Reply{ID: 0, Log: line})
	}
	return p
}

// run executes requests until msgs closes or the session ends.
func (p *jsonPeer) run() {
	for msg := range p.msgs {
		if !p.handle(msg) {
			return
		}
	}
}

func (p *jsonPeer) handle(msg []byte) bool {
	var req Request
	if err := json.Unmarshal(msg, &req); err != nil {
		return p.send(Reply{ID: "", Error: "bad request: " + err.Error(), Done: true}) == nil
	}
	id := idString(req.ID)
	if req.Complete {
		line := strings.Join(req.Command, " ")
		c := p.s.Complete(line)
		if c == nil {
			c = []string{}
		}
		return p.send(Reply{ID: id, Completion: c, Done: true}) == nil
	}
	words := make([]string, len(req.Command))
	for i, w := range req.Command {
		if strings.ContainsAny(w, " \t\"\\") {
			w = strconv.Quote(w)
		}
		words[i] = w
	}
	err := p.s.Execute(strings.Join(words, " "))
	p.s.Flush()
	r := Reply{ID: id, Done: true, Closed: p.s.Closed()}
	if err != nil {
		r.Error = err.Error()
	}
	return p.send(r) == nil && !p.s.Closed()
}

// serveJSONLines speaks the JSON protocol, one message per line, on a
// stream (what `mtev-supervise console -c` uses).
func (s *Server) serveJSONLines(ctx context.Context, lc *lineConn) {
	var wmu sync.Mutex
	enc := json.NewEncoder(lc)
	send := func(r Reply) error {
		wmu.Lock()
		defer wmu.Unlock()
		return enc.Encode(r)
	}
	p := s.newJSONPeer(ctx, send)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run()
	}()
	sc := bufio.NewScanner(lc)
	sc.Buffer(make([]byte, 4096), s.opts.MaxLine+1)
	defer func() { close(p.msgs); <-done }()
	for sc.Scan() {
		if lc.overflowed {
			lc.overflowed = false
			send(Reply{Error: "line too long", Done: true})
			continue
		}
		msg := append([]byte(nil), sc.Bytes()...)
		if len(bytes.TrimSpace(msg)) == 0 {
			continue
		}
		select {
		case p.msgs <- msg:
		case <-done:
			return
		}
	}
}

// Handler serves the console over a websocket (subprotocol mtev_console)
// with the JSON protocol, as libmtev's /mtev/console. Access control is the
// HTTP layer's (mount it behind its ACLs).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"mtev_console"}})
		if err != nil {
			s.report(err)
			return
		}
		closer := &wsCloser{c}
		if !s.track(closer) {
			c.Close(websocket.StatusGoingAway, "shutting down")
			return
		}
		s.wg.Add(1)
		defer s.wg.Done()
		defer s.untrack(closer)
		c.SetReadLimit(int64(s.opts.MaxLine))
		ctx, cancel := context.WithCancel(s.ctx)
		defer cancel()
		var wmu sync.Mutex
		send := func(rep Reply) error {
			b, err := json.Marshal(rep)
			if err != nil {
				return err
			}
			wmu.Lock()
			defer wmu.Unlock()
			return c.Write(ctx, websocket.MessageText, b)
		}
		p := s.newJSONPeer(ctx, send)
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.run()
			cancel()
		}()
		defer func() { close(p.msgs); <-done }()
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				c.CloseNow()
				return
			}
			select {
			case p.msgs <- msg:
			case <-done:
				c.Close(websocket.StatusNormalClosure, "")
				return
			}
		}
	})
}

type wsCloser struct{ c *websocket.Conn }

func (w *wsCloser) Close() error { return w.c.CloseNow() }

// Mounter is what the HTTP layer offers to mount handlers (pkg/rest's
// Router has this method).
type Mounter interface {
	Handle(method, base, expr string, h http.Handler) error
}

// Mount serves the websocket console at /mtev/console, as libmtev's route
// "WS /mtev/console" (pkg/rest's MethodWebSocket: a GET asking for an
// upgrade; such routes have no handler deadline).
func (s *Server) Mount(m Mounter) error {
	return m.Handle("WS", "/mtev/", "console", s.Handler())
}
