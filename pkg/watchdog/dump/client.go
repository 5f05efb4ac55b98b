package dump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Client is the parent's end of the control socket. Requests are served one
// at a time; Close may be called from any goroutine and makes a pending
// Request return ErrClosed.
type Client struct {
	conn *net.UnixConn

	mu     sync.Mutex // serializes requests; guards lr and nextID
	lr     lineReader
	nextID uint64

	closeOnce sync.Once
	closed    chan struct{}
}

// File is one file of a dump.
type File struct {
	Kind string
	Path string
	// Size is the file's size as the parent found it, or -1 when the child
	// did not write it.
	Size int64
	// Err is the child's reason for not writing the file, or "".
	Err string
}

// Result is the child's account of a dump request.
type Result struct {
	ID    uint64
	Files []File
	// Elapsed is the time the child spent, as it measured it.
	Elapsed time.Duration
}

// NewClient wraps the parent's end of a Pair. It duplicates f; the caller
// still closes f.
func NewClient(f *os.File) (*Client, error) {
	conn, err := fileConn(f)
	if err != nil {
		return nil, fmt.Errorf("dump: client: %w", err)
	}
	c := &Client{conn: conn, closed: make(chan struct{})}
	c.lr.r = conn
	return c, nil
}

// Close closes the connection; the child's Serve then returns. Close is
// idempotent.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		if e := c.conn.Close(); e != nil {
			err = fmt.Errorf("dump: close: %w", e)
		}
	})
	return err
}

// Ping checks that the child's Serve answers within budget.
func (c *Client) Ping(ctx context.Context, budget time.Duration) error {
	_, err := c.roundTrip(ctx, "ping", budget, func(uint64) request { return request{Op: OpPing} })
	return err
}

// Request asks the child for its own account: the files of Kinds, written
// by the child into dir (which must exist and be writable by the child)
// under names the parent chooses, "dump-<id>-<kind file>". It returns when
// the child answers, or after budget (or when ctx ends, if sooner) with an
// error wrapping ErrTimeout (or the context's error). An abandoned request
// is harmless: its late reply is recognized by its id and dropped by the
// next request. The child works within the same budget and reports, per
// file, what it could not write; sizes are checked by the parent.
func (c *Client) Request(ctx context.Context, dir string, budget time.Duration) (Result, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return Result{}, fmt.Errorf("dump: request: %w", err)
	}
	rep, err := c.roundTrip(ctx, "request", budget, func(id uint64) request {
		req := request{Op: OpDump, BudgetMS: max(1, budget.Milliseconds())}
		for _, k := range Kinds {
			name := fmt.Sprintf("dump-%d-%s", id, fileNames[k])
			req.Files = append(req.Files, fileSpec{Kind: k, Path: filepath.Join(dir, name)})
		}
		return req
	})
	if err != nil {
		return Result{}, err
	}
	res := Result{ID: rep.ID, Elapsed: time.Duration(rep.ElapsedMS * float64(time.Millisecond))}
	for _, f := range rep.Files {
		file := File{Kind: f.Kind, Path: f.Path, Size: -1, Err: f.Error}
		if f.Error == "" {
			if st, err := os.Stat(f.Path); err != nil {
				file.Err = fmt.Sprintf("child reported %d bytes: %v", f.Size, err)
			} else {
				file.Size = st.Size()
			}
		}
		res.Files = append(res.Files, file)
	}
	return res, nil
}

// roundTrip sends req with the next id and waits for the reply carrying
// that id, dropping replies to abandoned requests.
func (c *Client) roundTrip(ctx context.Context, op string, budget time.Duration, build func(id uint64) request) (reply, error) {
	if budget <= 0 {
		return reply{}, fmt.Errorf("dump: %s: budget %v is not positive", op, budget)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return reply{}, fmt.Errorf("dump: %s: %w", op, ErrClosed)
	default:
	}
	c.nextID++
	req := build(c.nextID)
	req.V, req.ID = Version, c.nextID
	deadline := time.Now().Add(budget)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := cancelOnDone(ctx, c.conn)
	defer stop()
	if err := writeMessage(c.conn, req, deadline); err != nil {
		return reply{}, c.fail(ctx, op, req.ID, err)
	}
	if err := c.conn.SetReadDeadline(deadline); err != nil {
		return reply{}, c.fail(ctx, op, req.ID, err)
	}
	for {
		line, err := c.lr.next()
		if errors.Is(err, errTooLong) {
			continue // an oversized message is dropped, with its id unknown
		}
		if err != nil {
			return reply{}, c.fail(ctx, op, req.ID, err)
		}
		rep, err := parseReply(line)
		if err != nil {
			if rep.ID != req.ID {
				continue // garbage from an abandoned request
			}
			return reply{}, fmt.Errorf("dump: %s %d: %w", op, req.ID, err)
		}
		if rep.ID != req.ID {
			continue // late reply to an abandoned request
		}
		if !rep.OK {
			return rep, fmt.Errorf("dump: %s %d: %w: %s", op, req.ID, ErrRefused, rep.Error)
		}
		return rep, nil
	}
}

// fail turns an I/O error into the package's errors.
func (c *Client) fail(ctx context.Context, op string, id uint64, err error) error {
	select {
	case <-c.closed:
		return fmt.Errorf("dump: %s %d: %w", op, id, ErrClosed)
	default:
	}
	if ctx.Err() != nil {
		return fmt.Errorf("dump: %s %d: %w", op, id, ctx.Err())
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("dump: %s %d: %w", op, id, ErrTimeout)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isPeerGone(err) {
		return fmt.Errorf("dump: %s %d: %w: %v", op, id, ErrClosed, err)
	}
	return fmt.Errorf("dump: %s %d: %w", op, id, err)
}

// cancelOnDone makes blocked I/O on conn return when ctx ends. The returned
// function stops the watcher and waits for it.
func cancelOnDone(ctx context.Context, conn net.Conn) (stop func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
			conn.SetDeadline(time.Unix(1, 0))
		case <-done:
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
