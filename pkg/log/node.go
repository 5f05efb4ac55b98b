package log

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
)

// node is the output of a typed facility: its Sink, the lock serializing
// calls to it, and, when asynchronous, its queue and writer goroutine.
type node struct {
	name   string
	typ    string
	format Format
	sink   Sink
	fl     Flusher // sink as a Flusher, or nil
	q      *queue  // nil when synchronous

	// mu serializes every call to sink and guards closed. Stats never
	// takes it: a stuck sink must not stop introspection.
	mu     sync.Mutex
	closed bool

	lastErr atomic.Pointer[string]

	lines, dropped, errs atomic.Uint64
}

func newNode(s *Spec, sink Sink, async bool) *node {
	n := &node{name: s.Name, typ: s.Type, format: s.Format, sink: sink}
	n.fl, _ = sink.(Flusher)
	if async {
		size := s.QueueBytes
		if size <= 0 {
			size = DefaultQueueBytes
		}
		n.q = newQueue(size, s.Overflow)
		n.q.wg.Add(1)
		go n.drain()
	}
	return n
}

// write delivers one rendered line.
func (n *node) write(line []byte) {
	if n.q != nil {
		if !n.q.push(line) {
			n.dropped.Add(1)
		}
		return
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.dropped.Add(1)
		return
	}
	n.writeLocked(line)
	n.flushLocked()
	n.mu.Unlock()
}

func (n *node) writeLocked(line []byte) {
	if err := n.sink.WriteLine(line); err != nil {
		n.failLocked(err)
		return
	}
	n.lines.Add(1)
}

func (n *node) flushLocked() {
	if n.fl != nil {
		if err := n.fl.Flush(); err != nil {
			n.failLocked(err)
		}
	}
}

func (n *node) failLocked(err error) {
	n.errs.Add(1)
	msg := err.Error()
	n.lastErr.Store(&msg)
}

// drain is the writer goroutine of an asynchronous node. It owns nothing
// but the batch it takes; it exits when the queue is closed and empty.
func (n *node) drain() {
	defer n.q.wg.Done()
	for {
		batch, ok := n.q.take()
		if !ok {
			return
		}
		n.mu.Lock()
		for rest := batch; len(rest) >= 4; {
			size := binary.LittleEndian.Uint32(rest)
			n.writeLocked(rest[4 : 4+size])
			rest = rest[4+size:]
		}
		n.flushLocked()
		n.mu.Unlock()
		n.q.done(batch)
	}
}

func (n *node) flush() error {
	if n.q != nil {
		n.q.wait()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	if fl, ok := n.sink.(Flusher); ok {
		if err := fl.Flush(); err != nil {
			return fmt.Errorf("log: flush %q: %w", n.name, err)
		}
	}
	return nil
}

func (n *node) reopen() error {
	if n.q != nil {
		n.q.wait()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	if r, ok := n.sink.(Reopener); ok {
		if err := r.Reopen(); err != nil {
			n.failLocked(err)
			return fmt.Errorf("log: reopen %q: %w", n.name, err)
		}
	}
	return nil
}

// close drains the queue, stops the writer goroutine and closes the sink.
// It is idempotent.
func (n *node) close() error {
	if n.q != nil {
		n.q.close()
		n.q.wg.Wait()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	if err := n.sink.Close(); err != nil {
		return fmt.Errorf("log: close %q: %w", n.name, err)
	}
	return nil
}

func (n *node) stats(s *Stats) {
	s.Type = n.typ
	s.Format = n.format.String()
	s.Lines = n.lines.Load()
	s.Dropped = n.dropped.Load()
	s.Errors = n.errs.Load()
	if p := n.lastErr.Load(); p != nil {
		s.LastError = *p
	}
	if n.q != nil {
		s.Async = true
		s.Overflow = n.q.policy.String()
		s.QueueBytes = n.q.len()
	}
}

// queue is the bounded buffer of an asynchronous node. Writers append
// length-prefixed lines to pending under mu; the writer goroutine swaps
// pending with an empty buffer and writes the batch without the lock.
type queue struct {
	policy Overflow
	limit  int
	wg     sync.WaitGroup

	mu      sync.Mutex
	work    sync.Cond // signalled when pending gains data or the queue closes
	room    sync.Cond // broadcast when pending is swapped out or a batch ends
	pending []byte
	spare   []byte
	busy    bool // a batch is being written
	closed  bool
	in      uint64 // lines queued so far
	taken   uint64 // value of in when the current batch was taken
	out     uint64 // lines written so far
}

func newQueue(limit int, policy Overflow) *queue {
	q := &queue{policy: policy, limit: limit}
	q.work.L = &q.mu
	q.room.L = &q.mu
	return q
}

// push appends line and reports whether it was queued.
func (q *queue) push(line []byte) bool {
	need := 4 + len(line)
	q.mu.Lock()
	for !q.closed && len(q.pending) > 0 && len(q.pending)+need > q.limit {
		if q.policy == Drop {
			q.mu.Unlock()
			return false
		}
		q.room.Wait()
	}
	if q.closed {
		q.mu.Unlock()
		return false
	}
	if q.pending == nil {
		// Allocate the buffer whole once rather than grow it by doubling.
		q.pending = make([]byte, 0, max(q.limit, need))
	}
	q.pending = binary.LittleEndian.AppendUint32(q.pending, uint32(len(line)))
	q.pending = append(q.pending, line...)
	q.in++
	q.work.Signal()
	q.mu.Unlock()
	return true
}

// take waits for a batch; it returns false once the queue is closed and
// empty.
func (q *queue) take() ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.pending) == 0 && !q.closed {
		q.work.Wait()
	}
	if len(q.pending) == 0 {
		return nil, false
	}
	batch := q.pending
	q.pending = q.spare[:0]
	q.spare = nil
	q.busy = true
	q.taken = q.in
	q.room.Broadcast()
	return batch, true
}

// done returns a written batch's buffer for reuse.
func (q *queue) done(batch []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.spare = batch[:0]
	q.busy = false
	q.out = q.taken
	q.room.Broadcast()
}

// wait returns when everything queued before the call has been written.
func (q *queue) wait() {
	q.mu.Lock()
	defer q.mu.Unlock()
	target := q.in
	for q.out < target {
		q.room.Wait()
	}
}

func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.work.Broadcast()
	q.room.Broadcast()
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}
