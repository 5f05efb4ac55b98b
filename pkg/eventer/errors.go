package eventer

import "errors"

// Sentinel errors. Errors returned by this package wrap them; test with
// errors.Is.
var (
	// ErrStopped: the loop, pool or system has stopped (or never started)
	// and accepts no more work.
	ErrStopped = errors.New("eventer: stopped")
	// ErrClosed: the descriptor or queue has been closed.
	ErrClosed = errors.New("eventer: closed")
	// ErrWouldBlock: a non-blocking read, write or accept found nothing to
	// do; wait for the next readiness callback. It wraps unix.EAGAIN's
	// meaning without exposing it.
	ErrWouldBlock = errors.New("eventer: operation would block")
	// ErrBacklogFull: TryAdd found the queue's backlog at its limit.
	ErrBacklogFull = errors.New("eventer: queue backlog full")
	// ErrDeadline: a job's deadline passed before its work finished (or
	// began). Errors carrying it also match context.DeadlineExceeded.
	ErrDeadline = errors.New("eventer: job deadline exceeded")
	// ErrInvalid: an option or argument is out of range.
	ErrInvalid = errors.New("eventer: invalid argument")
	// ErrConfig: a configuration key or value is wrong.
	ErrConfig = errors.New("eventer: bad configuration")
)
