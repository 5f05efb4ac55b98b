package journal

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pollInterval bounds how long Follow waits between looks at the journal
// when inotify is unavailable or reports nothing.
const pollInterval = 250 * time.Millisecond

// Follow calls fn for every entry with Seq >= from, in order, and then for
// every new entry as it is appended, until ctx is done (it returns ctx.Err())
// or fn returns an error (it returns that error unchanged). Damaged spans are
// skipped; use a Reader and its Follow method to see them.
func Follow(ctx context.Context, dir string, from uint64, fn func(Entry) error) error {
	r, err := NewReader(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.Seek(from); err != nil {
		return err
	}
	return r.Follow(ctx, fn)
}

// Follow calls fn for every entry from the Reader's position on, then for
// every new entry as it is appended, until ctx is done (it returns
// ctx.Err()) or fn returns an error (it returns that error unchanged). It
// notices appends through inotify on the directory, and polls every 250 ms
// as well. fn runs on the calling goroutine.
func (r *Reader) Follow(ctx context.Context, fn func(Entry) error) error {
	wk := newWaker(ctx, r.dir)
	defer wk.close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			if err := wk.wait(ctx); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// waker blocks until the journal directory changes, the poll interval
// passes, or ctx is done.
type waker struct {
	f      *os.File // inotify instance; nil means polling only
	broken bool     // reading inotify failed: poll instead
	stop   func() bool
	done   chan struct{} // closed when the cancel hook has run
	buf    []byte
}

// useInotify can be turned off by tests to exercise the polling fallback.
var useInotify = true

func newWaker(ctx context.Context, dir string) *waker {
	wk := &waker{}
	if !useInotify {
		return wk
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return wk
	}
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_DELETE | unix.IN_CLOSE_WRITE
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return wk
	}
	f := os.NewFile(uintptr(fd), "inotify")
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close() // not pollable: deadlines would not work
		return wk
	}
	wk.f, wk.buf, wk.done = f, make([]byte, 4096), make(chan struct{})
	wk.stop = context.AfterFunc(ctx, func() {
		defer close(wk.done)
		_ = f.SetReadDeadline(time.Unix(1, 0)) // wake a blocked wait now
	})
	return wk
}

func (wk *waker) wait(ctx context.Context) error {
	if wk.f == nil || wk.broken {
		t := time.NewTimer(pollInterval)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	// Set the deadline before looking at ctx: a cancel after this point
	// moves the deadline into the past and wakes the Read.
	if err := wk.f.SetReadDeadline(time.Now().Add(pollInterval)); err != nil {
		wk.broken = true
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := wk.f.Read(wk.buf)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		wk.broken = true
	}
	return nil
}

func (wk *waker) close() {
	if wk.f == nil {
		return
	}
	if !wk.stop() {
		<-wk.done // the cancel hook started: let it finish with the file
	}
	wk.f.Close()
}
