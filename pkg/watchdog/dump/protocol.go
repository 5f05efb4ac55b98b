package dump

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// EnvFD names the environment variable that carries, in the child, the
// number of the descriptor of the child's end of the control socket.
const EnvFD = "MTEV_CONTROL_FD"

// Version is the protocol's major version; both sides refuse others.
const Version = 1

// MaxMessage bounds one message (one line), newline included.
const MaxMessage = 64 << 10

// Operations.
const (
	OpPing = "ping"
	OpDump = "dump"
)

// File kinds a dump request may ask for.
const (
	// KindGoroutines is the goroutine profile at debug=2: every goroutine's
	// stack, with wait reason and duration, in the format of an unrecovered
	// panic. It carries pprof labels only when the child runs with
	// GODEBUG=tracebacklabels=1.
	KindGoroutines = "goroutines"
	// KindGrouped is the goroutine profile at debug=1: goroutines grouped by
	// stack, each group with its pprof labels ("# labels: {...}").
	KindGrouped = "goroutines-grouped"
	// KindTrace is the flight recorder's window, a runtime/trace file.
	KindTrace = "trace"
)

// Kinds lists the kinds Request asks for, in the order the child writes
// them (most useful first, so a short budget keeps the best).
var Kinds = []string{KindGoroutines, KindGrouped, KindTrace}

var fileNames = map[string]string{
	KindGoroutines: "goroutines.txt",
	KindGrouped:    "goroutines-grouped.txt",
	KindTrace:      "flight.trace",
}

// Errors returned by this package.
var (
	// ErrNotSupervised is returned by ServeFromEnv when EnvFD is unset.
	ErrNotSupervised = errors.New("not supervised")
	// ErrTimeout is returned by Request when no reply came within the budget.
	ErrTimeout = errors.New("no reply within budget")
	// ErrClosed is returned by Request when the client was closed or the
	// child's end is gone.
	ErrClosed = errors.New("connection closed")
	// ErrProtocol is returned for a message that breaks the protocol.
	ErrProtocol = errors.New("protocol error")
	// ErrRefused is returned by Request when the child answered with an
	// error for the whole request.
	ErrRefused = errors.New("request refused")
)

// request is a message from the parent.
type request struct {
	V        int        `json:"v"`
	ID       uint64     `json:"id"`
	Op       string     `json:"op"`
	BudgetMS int64      `json:"budget_ms,omitempty"`
	Files    []fileSpec `json:"files,omitempty"`
}

type fileSpec struct {
	Kind string `json:"kind"`
	Path string `json:"path"`
}

// reply is a message from the child.
type reply struct {
	V         int          `json:"v"`
	ID        uint64       `json:"id"`
	OK        bool         `json:"ok"`
	Error     string       `json:"error,omitempty"`
	ElapsedMS float64      `json:"elapsed_ms,omitempty"`
	Files     []fileResult `json:"files,omitempty"`
}

type fileResult struct {
	Kind  string `json:"kind"`
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	Error string `json:"error,omitempty"`
}

// decodeStrict decodes one JSON object, refusing unknown fields and
// trailing data.
func decodeStrict(line []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data after the message")
	}
	return nil
}

// parseRequest decodes a request line. On error the returned id is the
// request's if it could be read, so the error reply can name it.
func parseRequest(line []byte) (request, error) {
	var r request
	if err := decodeStrict(line, &r); err != nil {
		// Recover the id for the error reply when the message is JSON.
		var idOnly struct {
			ID uint64 `json:"id"`
		}
		json.NewDecoder(bytes.NewReader(line)).Decode(&idOnly)
		return request{ID: idOnly.ID}, fmt.Errorf("malformed request: %w", err)
	}
	if r.V != Version {
		return r, fmt.Errorf("protocol version %d, this child speaks %d", r.V, Version)
	}
	return r, nil
}

// parseReply decodes a reply line.
func parseReply(line []byte) (reply, error) {
	var r reply
	if err := decodeStrict(line, &r); err != nil {
		return r, fmt.Errorf("%w: malformed reply: %v", ErrProtocol, err)
	}
	if r.V != Version {
		return r, fmt.Errorf("%w: reply in protocol version %d, this parent speaks %d", ErrProtocol, r.V, Version)
	}
	return r, nil
}

// lineReader splits a stream into lines of at most MaxMessage bytes. It
// keeps a partial line across read errors (deadlines), so a timed-out read
// loses nothing.
type lineReader struct {
	r       io.Reader
	buf     []byte
	discard bool // dropping the rest of an oversized line
}

var errTooLong = fmt.Errorf("message longer than %d bytes", MaxMessage)

// next returns the next line without its newline. After errTooLong the
// rest of that line is skipped and reading can continue.
func (lr *lineReader) next() ([]byte, error) {
	var chunk [4096]byte
	for {
		if i := bytes.IndexByte(lr.buf, '\n'); i >= 0 {
			line := lr.buf[:i:i]
			lr.buf = lr.buf[i+1:]
			if i >= MaxMessage {
				return nil, errTooLong
			}
			return line, nil
		}
		if len(lr.buf) >= MaxMessage {
			lr.buf = lr.buf[:0]
			lr.discard = true
			return nil, errTooLong
		}
		n, err := lr.r.Read(chunk[:])
		data := chunk[:n]
		if lr.discard && n > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				continue
			}
			lr.discard = false
			data = data[i+1:]
		}
		lr.buf = append(lr.buf, data...)
		if n == 0 && err != nil {
			return nil, err
		}
	}
}

// writeMessage writes v as one line.
func writeMessage(conn net.Conn, v any, deadline time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	_, err = conn.Write(append(b, '\n'))
	return err
}

// Pair creates the control socket: a connected pair of unix stream sockets,
// close-on-exec. The parent keeps parent (NewClient) and passes child to the
// child in exec.Cmd.ExtraFiles, naming its descriptor number in EnvFD, then
// closes its copy of child.
func Pair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("dump: pair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "mtev-control"), os.NewFile(uintptr(fds[1]), "mtev-control-child"), nil
}

// fileConn turns a socket descriptor into a *net.UnixConn (a duplicate; f
// stays the caller's).
func fileConn(f *os.File) (*net.UnixConn, error) {
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("%s is a %T, not a unix socket", f.Name(), c)
	}
	return uc, nil
}
