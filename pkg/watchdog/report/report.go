package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// EnvFD names the environment variable that carries, in the child, the
// descriptor number of the child's end of the report channel.
const EnvFD = "MTEV_REPORT_FD"

// Version is the protocol's major version; the receiver refuses others.
const Version = 1

// MaxMessage bounds one datagram.
const MaxMessage = 16 << 10

// OpStall is the only operation of version 1.
const OpStall = "stall"

// Limits of the fields of a report.
const (
	maxName   = 256
	maxDetail = 1024
	maxLabels = 16
)

// Errors of this package.
var (
	// ErrNotSupervised: EnvFD is unset.
	ErrNotSupervised = errors.New("report: not supervised")
	// ErrDropped: the socket could not take the report at once.
	ErrDropped = errors.New("report: dropped, the channel is full")
	// ErrRateLimited: the child's own limit dropped the report.
	ErrRateLimited = errors.New("report: dropped, rate limited")
	// ErrClosed: the channel is closed or the supervisor is gone.
	ErrClosed = errors.New("report: channel closed")
	// ErrInvalid: a report breaks the protocol.
	ErrInvalid = errors.New("report: invalid")
)

// Stall is one report of a stalled unit of work.
type Stall struct {
	Source   string            // "http", "lua", "module", "probe", ...
	Name     string            // route, script, module
	Detail   string            // free text
	Elapsed  time.Duration     // how long the unit of work has run
	Deadline time.Duration     // the deadline it passed
	Labels   map[string]string // pprof labels of the stuck goroutine
	PID      int               // a process to capture instead of the child; 0: the child
	Hard     bool              // kill and restart the child
	// Dropped counts reports lost before this one (child or parent side).
	Dropped int
}

// message is the wire form.
type message struct {
	V          int               `json:"v"`
	Op         string            `json:"op"`
	Source     string            `json:"source"`
	Name       string            `json:"name,omitempty"`
	Detail     string            `json:"detail,omitempty"`
	ElapsedMS  int64             `json:"elapsed_ms"`
	DeadlineMS int64             `json:"deadline_ms"`
	Labels     map[string]string `json:"labels,omitempty"`
	PID        int               `json:"pid,omitempty"`
	Hard       bool              `json:"hard,omitempty"`
	Dropped    int               `json:"dropped,omitempty"`
}

// Validate checks a report against the protocol's limits.
func (s Stall) Validate() error {
	if !isWord(s.Source) {
		return fmt.Errorf("%w: source %q: want a lowercase word", ErrInvalid, s.Source)
	}
	if len(s.Name) > maxName || len(s.Detail) > maxDetail {
		return fmt.Errorf("%w: name or detail too long (%d, %d bytes; limits %d, %d)", ErrInvalid, len(s.Name), len(s.Detail), maxName, maxDetail)
	}
	if len(s.Labels) > maxLabels {
		return fmt.Errorf("%w: %d labels, at most %d", ErrInvalid, len(s.Labels), maxLabels)
	}
	if s.Elapsed < 0 || s.Deadline < 0 || s.PID < 0 || s.Dropped < 0 {
		return fmt.Errorf("%w: negative elapsed, deadline, pid or dropped", ErrInvalid)
	}
	return nil
}

func isWord(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

// Encode returns the datagram of s.
func Encode(s Stall) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(message{V: Version, Op: OpStall, Source: s.Source, Name: s.Name, Detail: s.Detail,
		ElapsedMS: s.Elapsed.Milliseconds(), DeadlineMS: s.Deadline.Milliseconds(), Labels: s.Labels,
		PID: s.PID, Hard: s.Hard, Dropped: s.Dropped})
	if err != nil {
		return nil, err
	}
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalid, len(b), MaxMessage)
	}
	return b, nil
}

// Decode parses one datagram, refusing unknown fields, other versions and
// values beyond the limits.
func Decode(b []byte) (Stall, error) {
	var m message
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return Stall{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if d.More() {
		return Stall{}, fmt.Errorf("%w: trailing data", ErrInvalid)
	}
	if m.V != Version {
		return Stall{}, fmt.Errorf("%w: protocol version %d, this supervisor speaks %d", ErrInvalid, m.V, Version)
	}
	if m.Op != OpStall {
		return Stall{}, fmt.Errorf("%w: unknown op %q", ErrInvalid, m.Op)
	}
	s := Stall{Source: m.Source, Name: m.Name, Detail: m.Detail, Elapsed: time.Duration(m.ElapsedMS) * time.Millisecond,
		Deadline: time.Duration(m.DeadlineMS) * time.Millisecond, Labels: m.Labels, PID: m.PID, Hard: m.Hard, Dropped: m.Dropped}
	return s, s.Validate()
}

// Pair creates the channel: a connected pair of unix datagram sockets,
// close-on-exec. The parent keeps parent (NewReceiver) and passes child.
func Pair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("report: pair: %w", err)
	}
	// A small receive buffer on the parent's side bounds what a flood
	// can queue before the limiter sees it.
	unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_RCVBUF, 64<<10)
	return os.NewFile(uintptr(fds[0]), "mtev-report"), os.NewFile(uintptr(fds[1]), "mtev-report-child"), nil
}

// Limiter is a token bucket: Burst at once, then one per Every.
type Limiter struct {
	Burst int
	Every time.Duration

	tokens float64
	last   time.Time
}

// Allow reports whether one more event fits at now.
func (l *Limiter) Allow(now time.Time) bool {
	if l.last.IsZero() {
		l.tokens, l.last = float64(l.Burst), now
	}
	if l.Every > 0 {
		l.tokens = min(float64(l.Burst), l.tokens+float64(now.Sub(l.last))/float64(l.Every))
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// Default limits: the child sends at most SendBurst reports at once and
// then one per SendEvery; the supervisor takes at most ReceiveBurst at
// once and then one per ReceiveEvery from one child.
const (
	SendBurst    = 20
	SendEvery    = 100 * time.Millisecond
	ReceiveBurst = 10
	ReceiveEvery = 500 * time.Millisecond
)

// Sender is the child's end. Send may be called from any goroutine.
type Sender struct {
	fd      int
	mu      sync.Mutex
	limit   Limiter
	dropped int
	hard    bool // a hard report went out
	closed  bool
	now     func() time.Time
}

// SenderFromEnv takes the descriptor named by EnvFD. It returns an error
// wrapping ErrNotSupervised when EnvFD is unset.
func SenderFromEnv() (*Sender, error) {
	v := os.Getenv(EnvFD)
	if v == "" {
		return nil, fmt.Errorf("report: %w: %s is unset", ErrNotSupervised, EnvFD)
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("report: %s=%q is not a descriptor number above 2", EnvFD, v)
	}
	unix.CloseOnExec(fd) // never passed on to the child's own children
	return newSender(fd), nil
}

// NewSender wraps the child's end of a Pair (a duplicate; f stays the
// caller's).
func NewSender(f *os.File) (*Sender, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, fmt.Errorf("report: sender: %w", err)
	}
	return newSender(fd), nil
}

func newSender(fd int) *Sender {
	return &Sender{fd: fd, limit: Limiter{Burst: SendBurst, Every: SendEvery}, now: time.Now}
}

// Send sends s without blocking. It returns ErrRateLimited or ErrDropped
// when the report was not sent (it is counted and the count goes with the
// next report), ErrClosed when the supervisor is gone, or an error
// wrapping ErrInvalid for a report beyond the protocol's limits.
func (snd *Sender) Send(s Stall) error {
	snd.mu.Lock()
	defer snd.mu.Unlock()
	if snd.closed {
		return ErrClosed
	}
	if err := s.Validate(); err != nil {
		return err
	}
	// The first hard report is never rate limited: it ends the child's
	// life, so there is at most one that matters.
	firstHard := s.Hard && !snd.hard
	if !snd.limit.Allow(snd.now()) && !firstHard {
		snd.dropped++
		return ErrRateLimited
	}
	s.Dropped += snd.dropped
	b, err := Encode(s)
	if err != nil {
		return err
	}
	err = unix.Sendto(snd.fd, b, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, nil)
	switch {
	case err == nil:
		snd.dropped = 0
		snd.hard = snd.hard || s.Hard
		return nil
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.ENOBUFS):
		snd.dropped++
		return ErrDropped
	case errors.Is(err, unix.ECONNREFUSED), errors.Is(err, unix.EPIPE), errors.Is(err, unix.ENOTCONN):
		return ErrClosed
	}
	return fmt.Errorf("report: send: %w", err)
}

// Close closes the sender's descriptor.
func (snd *Sender) Close() error {
	snd.mu.Lock()
	defer snd.mu.Unlock()
	if snd.closed {
		return nil
	}
	snd.closed = true
	return unix.Close(snd.fd)
}

// Receiver is the parent's end.
type Receiver struct {
	conn *net.UnixConn
	// Limit bounds what Serve delivers; ReceiveBurst and ReceiveEvery
	// when zero.
	Limit Limiter
	// Now is the limiter's clock; time.Now when nil.
	Now func() time.Time
}

// NewReceiver wraps the parent's end of a Pair (a duplicate; f stays the
// caller's).
func NewReceiver(f *os.File) (*Receiver, error) {
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("report: receiver: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("report: receiver: %s is a %T, not a unix socket", f.Name(), c)
	}
	return &Receiver{conn: uc}, nil
}

// Serve reads reports until Close. deliver gets each valid report within
// the limit, with the reports dropped before it counted in Dropped; bad
// gets each refused datagram's error (it may be nil). Both are called on
// Serve's goroutine.
func (r *Receiver) Serve(deliver func(Stall), bad func(error)) error {
	if r.Limit.Burst == 0 {
		r.Limit = Limiter{Burst: ReceiveBurst, Every: ReceiveEvery}
	}
	now := r.Now
	if now == nil {
		now = time.Now
	}
	buf := make([]byte, MaxMessage+1)
	dropped := 0
	hard := false
	for {
		n, _, flags, _, err := r.conn.ReadMsgUnix(buf, nil)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("report: receive: %w", err)
		}
		if n > MaxMessage || flags&unix.MSG_TRUNC != 0 {
			if bad != nil {
				bad(fmt.Errorf("%w: datagram longer than %d bytes", ErrInvalid, MaxMessage))
			}
			continue
		}
		s, err := Decode(buf[:n])
		if err != nil {
			if bad != nil {
				bad(err)
			}
			continue
		}
		// The first hard report passes whatever the limit: it ends the
		// child. Later ones, and soft ones, are limited.
		firstHard := s.Hard && !hard
		if !r.Limit.Allow(now()) && !firstHard {
			dropped += 1 + s.Dropped
			continue
		}
		hard = hard || s.Hard
		s.Dropped += dropped
		dropped = 0
		deliver(s)
	}
}

// Close ends Serve.
func (r *Receiver) Close() error { return r.conn.Close() }
