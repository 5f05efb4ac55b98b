package console

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
)

// Client runs commands on a console over the JSON protocol (what
// `mtev-supervise console -c` uses). It is not safe for concurrent use.
type Client struct {
	conn    net.Conn
	sc      *bufio.Scanner
	next    int
	greeted bool
}

// ErrSessionClosed is returned by Client.Run once the server ended the
// session (exit, shutdown, restart).
var ErrSessionClosed = errors.New("console: session closed by the server")

// Dial connects to a console ("unix", path) or ("tcp", host:port).
func Dial(ctx context.Context, network, addr string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("console: dial %s: %w", addr, err)
	}
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	return &Client{conn: conn, sc: sc}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// CommandError is a command's failure as the server reported it.
type CommandError struct{ Msg string }

func (e *CommandError) Error() string { return e.Msg }

// Run runs one command line, copying its output (and followed log lines)
// to out. A failed command returns *CommandError; a session the command
// ended returns ErrSessionClosed after the output.
func (c *Client) Run(line string, out io.Writer) error {
	words, err := splitWords(line)
	if err != nil {
		return err
	}
	return c.request(Request{Command: words}, out, nil)
}

// Complete returns the completions of the last word of line.
func (c *Client) Complete(line string) ([]string, error) {
	words, err := splitWords(line)
	if err != nil {
		return nil, err
	}
	if line == "" || line[len(line)-1] == ' ' {
		words = append(words, "")
	}
	var got []string
	err = c.request(Request{Command: words, Complete: true}, io.Discard, &got)
	return got, err
}

func (c *Client) request(req Request, out io.Writer, completion *[]string) error {
	c.next++
	id := strconv.Itoa(c.next)
	req.ID = json.RawMessage(id)
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("console: send: %w", err)
	}
	for c.sc.Scan() {
		var r struct {
			Reply
			ID json.RawMessage `json:"id"`
		}
		line := c.sc.Bytes()
		if !c.greeted {
			// The banner and prompt every client gets come first.
			i := bytes.IndexByte(line, '{')
			if i < 0 {
				continue
			}
			line, c.greeted = line[i:], true
		}
		if err := json.Unmarshal(line, &r); err != nil {
			return fmt.Errorf("console: bad reply %q: %w", line, err)
		}
		switch {
		case r.Text != nil:
			io.WriteString(out, *r.Text)
		case r.Log != nil:
			var s string
			if json.Unmarshal(r.Log, &s) == nil {
				io.WriteString(out, s+"\n")
			} else {
				out.Write(append(r.Log, '\n'))
			}
		case r.Done && idString(r.ID) == id:
			if completion != nil {
				*completion = r.Completion
			}
			if r.Error != "" {
				return &CommandError{r.Error}
			}
			if r.Closed {
				return ErrSessionClosed
			}
			return nil
		case r.Done && len(r.ID) == 0 || r.Done && idString(r.ID) == "":
			return &CommandError{r.Error}
		}
	}
	if err := c.sc.Err(); err != nil {
		return fmt.Errorf("console: read: %w", err)
	}
	return fmt.Errorf("console: connection closed: %w", io.ErrUnexpectedEOF)
}

// Size reports a terminal's size for Attach.
type Size func() (w, h int, ok bool)

// Attach runs an interactive telnet session on a raw terminal: keys from in
// go to the server, whose line editor echoes, and the screen goes to out.
// It returns when the server closes the session or in ends.
func Attach(conn net.Conn, in io.Reader, out io.Writer, size Size) error {
	var wmu sync.Mutex
	send := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_, err := conn.Write(b)
		return err
	}
	sendSize := func() {
		if size == nil {
			return
		}
		w, h, ok := size()
		if !ok {
			return
		}
		sb := []byte{byte(w >> 8), byte(w), byte(h >> 8), byte(h)}
		send(append(append([]byte{tnIAC, tnSB, optNAWS}, escapeIAC(sb)...), tnIAC, tnSE))
	}
	// Starting with a telnet command selects the line-edited session.
	if err := send([]byte{tnIAC, tnDO, optSGA}); err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := in.Read(buf)
			if n > 0 && send(escapeIAC(buf[:n])) != nil {
				return
			}
			if err != nil {
				conn.(interface{ CloseWrite() error }).CloseWrite()
				return
			}
		}
	}()
	r := bufio.NewReader(conn)
	state := tsData
	var cmd byte
	var data []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		switch state {
		case tsData:
			if b == tnIAC {
				state = tsIAC
				continue
			}
			data = append(data, b)
			if r.Buffered() == 0 || len(data) >= 4096 {
				out.Write(data)
				data = data[:0]
			}
		case tsIAC:
			switch b {
			case tnIAC:
				data = append(data, tnIAC)
				state = tsData
			case tnWILL, tnWONT, tnDO, tnDONT:
				cmd, state = b, tsOpt
			case tnSB:
				state = tsSB
			default:
				state = tsData
			}
		case tsOpt:
			state = tsData
			switch {
			case cmd == tnDO && b == optNAWS:
				send([]byte{tnIAC, tnWILL, optNAWS})
				sendSize()
			case cmd == tnWILL && (b == optEcho || b == optSGA):
				send([]byte{tnIAC, tnDO, b})
			case cmd == tnDO:
				send([]byte{tnIAC, tnWONT, b})
			case cmd == tnWILL:
				send([]byte{tnIAC, tnDONT, b})
			}
		case tsSB:
			if b == tnIAC {
				state = tsSBIAC
			}
		case tsSBIAC:
			state = tsSB
			if b == tnSE {
				state = tsData
			}
		}
		if len(data) > 0 && r.Buffered() == 0 {
			out.Write(data)
			data = data[:0]
		}
	}
}
