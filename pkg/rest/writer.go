package rest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// ErrHandlerTimeout is returned by writes of a handler that passed its
// deadline: the client already has its 503.
var ErrHandlerTimeout = errors.New("rest: handler passed its deadline")

// respWriter sits between a handler and net/http: it records the status
// and byte counts for the access log, compresses when negotiated, and,
// for a supervised handler, stops a hung handler's late writes.
type respWriter struct {
	rw http.ResponseWriter
	x  *Exchange
	rt *Router

	mu       sync.Mutex // held by every method when guarded
	guarded  bool
	dead     bool // the deadline passed: the handler's writes fail
	hijacked bool

	status  int  // what the handler asked for
	sent    bool // the header went to net/http
	written atomic.Int64
	enc     string // negotiated encoding, "" none
	decided bool
	buf     []byte
	cw      compressor
	deadHdr http.Header
}

func (w *respWriter) lock() {
	if w.guarded {
		w.mu.Lock()
	}
}

func (w *respWriter) unlock() {
	if w.guarded {
		w.mu.Unlock()
	}
}

func (w *respWriter) Header() http.Header {
	w.lock()
	defer w.unlock()
	if w.dead {
		if w.deadHdr == nil {
			w.deadHdr = http.Header{}
		}
		return w.deadHdr
	}
	return w.rw.Header()
}

func (w *respWriter) WriteHeader(code int) {
	w.lock()
	defer w.unlock()
	if w.dead || w.hijacked {
		return
	}
	w.writeHeaderLocked(code)
}

func (w *respWriter) writeHeaderLocked(code int) {
	if w.status != 0 {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.rw.WriteHeader(code) // informational: pass through
		return
	}
	if w.x.body != nil && w.x.body.overflow.Load() && code >= 400 {
		code = http.StatusRequestEntityTooLarge
		w.rw.Header().Set("Connection", "close")
	}
	w.status = code
	w.x.Status = code
	ResponseStarting.Invoke(w.x)
	if w.enc == "" || !bodyAllowed(code, w.x.Request.Method) || w.rw.Header().Get("Content-Encoding") != "" || incompressible(w.rw.Header().Get("Content-Type")) {
		w.enc = ""
		w.decided = true
		w.sendHeaderLocked()
		return
	}
	if cl := w.rw.Header().Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		w.decided = true
		if err != nil || n < int64(w.rt.minGz) {
			w.enc = ""
			w.sendHeaderLocked()
			return
		}
		w.startCompressLocked()
	}
}

func (w *respWriter) sendHeaderLocked() {
	if !w.sent {
		w.sent = true
		w.rw.WriteHeader(w.status)
	}
}

func (w *respWriter) Write(p []byte) (int, error) {
	w.lock()
	defer w.unlock()
	if w.dead {
		return 0, ErrHandlerTimeout
	}
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.status == 0 {
		if w.rw.Header().Get("Content-Type") == "" && w.enc != "" {
			w.rw.Header().Set("Content-Type", http.DetectContentType(p))
		}
		w.writeHeaderLocked(http.StatusOK)
	}
	if !w.decided {
		w.buf = append(w.buf, p...)
		if len(w.buf) >= w.rt.minGz {
			w.decided = true
			w.startCompressLocked()
		}
		return len(p), nil
	}
	if w.cw != nil {
		return w.cw.Write(p)
	}
	n, err := w.rw.Write(p)
	w.written.Add(int64(n))
	return n, err
}

// decideLocked settles an undecided compression with what is buffered:
// too little to be worth it goes out plain.
func (w *respWriter) decideLocked() {
	if w.decided {
		return
	}
	w.decided = true
	w.enc = ""
	w.sendHeaderLocked()
	if len(w.buf) > 0 {
		n, _ := w.rw.Write(w.buf)
		w.written.Add(int64(n))
		w.buf = nil
	}
}

func (w *respWriter) startCompressLocked() {
	h := w.rw.Header()
	h.Set("Content-Encoding", w.enc)
	h.Add("Vary", "Accept-Encoding")
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	w.sendHeaderLocked()
	w.cw = newCompressor(w.enc, &countWriter{w: w.rw, n: &w.written})
	if len(w.buf) > 0 {
		_, _ = w.cw.Write(w.buf)
		w.buf = nil
	}
}

func (w *respWriter) Flush() {
	w.lock()
	defer w.unlock()
	if w.dead || w.hijacked {
		return
	}
	if w.status == 0 {
		w.writeHeaderLocked(http.StatusOK)
	}
	w.decideLocked()
	if w.cw != nil {
		_ = w.cw.Flush()
	}
	if f, ok := w.rw.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection over (websockets); not for supervised
// handlers.
func (w *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.lock()
	defer w.unlock()
	if w.dead {
		return nil, nil, ErrHandlerTimeout
	}
	hj, ok := w.rw.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, b, err := hj.Hijack()
	if err == nil {
		w.hijacked = true
		if w.status == 0 {
			w.status = http.StatusSwitchingProtocols
			w.x.Status = w.status
		}
	}
	return c, b, err
}

// Unwrap lets http.ResponseController reach net/http's writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.rw }

// close ends the response after the handler returned in time.
func (w *respWriter) close() {
	w.lock()
	defer w.unlock()
	if w.dead || w.hijacked {
		return
	}
	if w.status == 0 {
		code := http.StatusOK
		if w.x.body != nil && w.x.body.overflow.Load() {
			code = http.StatusRequestEntityTooLarge
		}
		w.writeHeaderLocked(code)
	}
	w.decideLocked()
	if w.cw != nil {
		_ = w.cw.Close()
		w.cw = nil
	}
}

func bodyAllowed(code int, method string) bool {
	return method != http.MethodHead && code != http.StatusNoContent && code != http.StatusNotModified && code >= 200
}

type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// bodyReader counts and limits the request body.
type bodyReader struct {
	rc       io.ReadCloser
	limit    int64 // 0: none
	n        atomic.Int64
	overflow atomic.Bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.limit > 0 {
		left := b.limit - b.n.Load()
		if left < 0 {
			b.overflow.Store(true)
			return 0, &http.MaxBytesError{Limit: b.limit}
		}
		if int64(len(p)) > left+1 {
			p = p[:left+1]
		}
	}
	n, err := b.rc.Read(p)
	total := b.n.Add(int64(n))
	if b.limit > 0 && total > b.limit {
		b.overflow.Store(true)
		return n - int(total-b.limit), &http.MaxBytesError{Limit: b.limit}
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.rc.Close() }
