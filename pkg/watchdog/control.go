package watchdog

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// StatusInfo is what `mtev-supervise status` shows.
type StatusInfo struct {
	Service       string      `json:"service"`
	SupervisorPID int         `json:"supervisor_pid"`
	State         string      `json:"state"` // "running", "ready", "stopping", "backoff", "stopped"
	PID           int         `json:"pid,omitempty"`
	MainPID       int         `json:"main_pid,omitempty"`
	StartCount    int         `json:"start_count"`
	Restarts      int         `json:"restarts"`
	UptimeMS      int64       `json:"uptime_ms,omitempty"`
	Ready         bool        `json:"ready,omitempty"`
	NotifyStatus  string      `json:"notify_status,omitempty"`
	LastExit      *trace.Exit `json:"last_exit,omitempty"`
	LastExitTime  *time.Time  `json:"last_exit_time,omitempty"`
	NextStartInMS int64       `json:"next_start_in_ms,omitempty"`
	Command       []string    `json:"command"`
	Hearts        []HeartInfo `json:"hearts,omitempty"`
	StopTimeoutMS int64       `json:"stop_timeout_ms,omitempty"` // how long a graceful stop may take
	// Containment names how the child's tree is kept from outliving it
	// and the supervisor (see docs/processes.md).
	Containment string `json:"containment,omitempty"`

	Probes []ProbeInfo `json:"probes,omitempty"` // the child's probes (probes.go)

	// Sockets the supervisor holds for its children, as NAME=NETWORK://ADDRESS
	// with the address bound (the port chosen for port 0), and the names
	// of the descriptors children stored with FDSTORE=1 (sockets.go).
	Sockets []string `json:"sockets,omitempty"`
	Stored  []string `json:"stored,omitempty"`
}

// HeartInfo is one heart of the child, as the supervisor sees it.
type HeartInfo struct {
	Slot      int    `json:"slot"`
	Name      string `json:"name"`
	ThreadID  int    `json:"thread_id,omitempty"`
	State     string `json:"state"`
	AgeMS     int64  `json:"age_ms"`
	TimeoutMS int64  `json:"timeout_ms"`
	Beats     uint64 `json:"beats"`
}

// ErrNotRunning: no supervisor answers on the control socket.
var ErrNotRunning = errors.New("watchdog: no supervisor is running for this service")

// Status returns the supervisor's view of its child.
func (s *Supervisor) Status() (StatusInfo, error) {
	r, err := s.ask(request{op: "status"})
	if err != nil {
		return StatusInfo{}, err
	}
	return r.(StatusInfo), nil
}

// Restart stops the child gracefully and starts it again at once, without
// backoff and without counting a death.
func (s *Supervisor) Restart() error { _, err := s.ask(request{op: "restart"}); return err }

// Stop stops the child gracefully; Serve then returns nil.
func (s *Supervisor) Stop() error { _, err := s.ask(request{op: "stop"}); return err }

// Signal sends sig to the child's main process.
func (s *Supervisor) Signal(sig syscall.Signal) error {
	r, err := s.ask(request{op: "signal", sig: sig})
	if err != nil {
		return err
	}
	if e, ok := r.(error); ok {
		return e
	}
	return nil
}

func (s *Supervisor) ask(r request) (any, error) {
	r.reply = make(chan any, 1)
	select {
	case s.msgs <- r:
	case <-s.done:
		return nil, ErrNotRunning
	}
	select {
	case v := <-r.reply:
		return v, nil
	case <-s.done:
		return nil, ErrNotRunning
	}
}

// handle answers a request on the loop goroutine.
func (s *Supervisor) handle(r request) any {
	switch r.op {
	case "status":
		return s.status()
	case "restart":
		if s.cur != nil && !s.ending {
			s.stopChild(s.cur, "restart", "restart requested")
		}
		return nil
	case "stop":
		s.end(nil, "stop requested")
		return nil
	case "reconfigure":
		return s.reconfigure(*r.cfg)
	case "signal":
		if s.cur == nil {
			return fmt.Errorf("watchdog: no child running")
		}
		if err := unix.Kill(s.cur.mainPID, r.sig); err != nil {
			return fmt.Errorf("watchdog: signal pid %d: %w", s.cur.mainPID, err)
		}
		s.cur.sentSignal = signalName(r.sig)
		return nil
	}
	return fmt.Errorf("watchdog: unknown request %q", r.op)
}

func (s *Supervisor) status() StatusInfo {
	st := StatusInfo{
		Service:       s.cfg.Name,
		SupervisorPID: os.Getpid(),
		StartCount:    s.starts,
		Restarts:      max(0, s.starts-1),
		LastExit:      s.lastExit,
		Command:       s.cfg.Command,
		Containment:   ContainMode,
		StopTimeoutMS: ms(s.cfg.StopTimeout),
	}
	for _, h := range s.sockets {
		l := h.Listen
		if h.bound != "" {
			l.Address = h.bound
		}
		st.Sockets = append(st.Sockets, l.String())
	}
	for _, e := range s.fdstore.entries {
		st.Stored = append(st.Stored, e.name)
	}
	if !s.lastEnd.IsZero() {
		t := s.lastEnd
		st.LastExitTime = &t
	}
	switch c := s.cur; {
	case c != nil:
		st.PID, st.MainPID = c.pid, c.mainPID
		st.UptimeMS = ms(time.Since(c.started))
		st.Ready, st.NotifyStatus = c.ready, c.status
		st.State = "running"
		if c.ready {
			st.State = "ready"
		}
		if c.planned != "" {
			st.State = "stopping"
		}
		st.Probes = s.probeStatus(c)
		if s.monitor != nil {
			for _, h := range s.monitor.Hearts(time.Now()) {
				st.Hearts = append(st.Hearts, HeartInfo{Slot: h.Slot, Name: h.Name, ThreadID: h.ThreadID,
					State: h.State.String(), AgeMS: ms(h.Age), TimeoutMS: ms(h.Timeout), Beats: h.Ticker})
			}
		}
	case s.ending:
		st.State = "stopped"
	default:
		st.State = "backoff"
		st.NextStartInMS = max(0, ms(time.Until(s.nextAt)))
	}
	return st
}

// The control socket speaks one JSON request per line and answers with one
// JSON response per line:
//
//	{"op":"status"}  → {"ok":true,"status":{...}}
//	{"op":"restart"} → {"ok":true}
//	{"op":"stop"}    → {"ok":true}
//	anything else    → {"ok":false,"error":"..."}
//
// It listens on a unix socket with mode 0600 and refuses peers whose uid is
// neither the supervisor's nor root's.
type controlServer struct {
	ln      *net.UnixListener
	path    string
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]bool // value: answering a request right now
	closing bool

	// Refused peers and bad requests are logged through warn, at most
	// once per peer pid per interval.
	warn    func(error)
	refused *refusals
}

// errSocketAnswers: a process listens on the path of a control socket.
var errSocketAnswers = errors.New("watchdog: control socket answers")

// listenPrivate listens on the unix socket path with mode 0600 (the
// supervisor's user and root may connect; peerAllowed checks them), in a
// directory made if needed. A socket left there by a process that died is
// replaced; one that answers is errSocketAnswers. Errors begin with
// prefix. The socket file is removed when the listener closes.
func listenPrivate(path, prefix string) (*net.UnixListener, error) {
	if len(path) > maxUnixPath {
		return nil, fmt.Errorf("%scontrol socket path %q is longer than %d bytes: use a shorter state directory", prefix, path, maxUnixPath)
	}
	if err := ensureDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, errSocketAnswers
	}
	os.Remove(path)
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("%scontrol socket: %w", prefix, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("%scontrol socket: %w", prefix, err)
	}
	return ln, nil
}

type controlRequest struct {
	Op string `json:"op"`
}

type controlResponse struct {
	OK     bool        `json:"ok"`
	Error  string      `json:"error,omitempty"`
	Status *StatusInfo `json:"status,omitempty"`
}

func listenControl(path string) (*controlServer, error) {
	ln, err := listenPrivate(path, "watchdog: ")
	if errors.Is(err, errSocketAnswers) {
		// A socket that answers belongs to a running supervisor of the
		// same service.
		return nil, fmt.Errorf("watchdog: a supervisor for this service is already running (control socket %s answers)", path)
	}
	if err != nil {
		return nil, err
	}
	return &controlServer{ln: ln, path: path, conns: map[net.Conn]bool{}, refused: newRefusals(refusalInterval, nil)}, nil
}

func (cs *controlServer) serve(s *Supervisor) {
	for {
		conn, err := cs.ln.AcceptUnix()
		if err != nil {
			cs.wg.Wait()
			return
		}
		cred, ok := peerAllowed(conn)
		if !ok {
			if cred != nil {
				cs.report(int(cred.Pid), fmt.Sprintf("peer uid %d is neither the supervisor's nor root's", cred.Uid))
			} else {
				cs.report(0, "no peer credentials")
			}
			conn.Close()
			continue
		}
		cs.mu.Lock()
		cs.conns[conn] = false
		cs.mu.Unlock()
		cs.wg.Add(1)
		go func() {
			defer cs.wg.Done()
			defer func() {
				cs.mu.Lock()
				delete(cs.conns, conn)
				cs.mu.Unlock()
				conn.Close()
			}()
			cs.conn(s, conn, int(cred.Pid))
		}()
	}
}

// report logs a refusal, rate-limited per peer.
func (cs *controlServer) report(pid int, why string) {
	ok, suppressed := cs.refused.allow(pid)
	if !ok || cs.warn == nil {
		return
	}
	more := ""
	if suppressed > 0 {
		more = fmt.Sprintf(" (%d more from it suppressed in the last %v)", suppressed, cs.refused.interval)
	}
	cs.warn(fmt.Errorf("watchdog: control socket: request from pid %d refused: %s%s", pid, why, more))
}

func (cs *controlServer) conn(s *Supervisor, conn net.Conn, peer int) {
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 4096), 64<<10)
	enc := json.NewEncoder(conn)
	for sc.Scan() {
		if !cs.setBusy(conn, true) {
			return
		}
		var req controlRequest
		var resp controlResponse
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = "bad request: " + err.Error()
			cs.report(peer, resp.Error)
		} else {
			switch req.Op {
			case "status":
				st, err := s.Status()
				if err != nil {
					resp.Error = err.Error()
				} else {
					resp.OK, resp.Status = true, &st
				}
			case "restart", "stop":
				if _, err := s.ask(request{op: controlOp(req.Op)}); err != nil {
					resp.Error = err.Error()
				} else {
					resp.OK = true
				}
			default:
				resp.Error = fmt.Sprintf("unknown op %q", req.Op)
				cs.report(peer, resp.Error)
			}
		}
		if enc.Encode(resp) != nil || !cs.setBusy(conn, false) {
			return
		}
	}
}

// setBusy marks conn as answering a request (or done with one); it
// reports false once the server is closing and conn is to end.
func (cs *controlServer) setBusy(conn net.Conn, busy bool) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closing {
		return false
	}
	cs.conns[conn] = busy
	return true
}

// close stops accepting, ends open connections and waits for them.
// A connection answering a request (a stop, whose answer is written as the
// supervisor ends) gets up to a second to write it.
func (cs *controlServer) close() {
	cs.ln.Close()
	cs.mu.Lock()
	cs.closing = true
	for c, busy := range cs.conns {
		if !busy {
			c.Close()
		}
	}
	cs.mu.Unlock()
	if !waitTimeout(&cs.wg, time.Second) {
		cs.mu.Lock()
		for c := range cs.conns {
			c.Close()
		}
		cs.mu.Unlock()
		cs.wg.Wait()
	}
}

// peerAllowed reports whether the peer may use the socket, with its
// credentials (nil when they cannot be read).
func peerAllowed(conn *net.UnixConn) (*unix.Ucred, bool) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return nil, false
	}
	return cred, cred.Uid == uint32(os.Geteuid()) || cred.Uid == 0
}

// Control sends one request to the supervisor of service name in stateDir
// and returns its answer. It is what `mtev-supervise status|restart|stop` use.
func Control(ctx context.Context, stateDir, name, op string) (*StatusInfo, error) {
	path := SocketPath(stateDir, name)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			// The file is there, nobody listens: a supervisor that was
			// killed left it. The next start of the service removes it.
			return nil, fmt.Errorf("%w (stale control socket at %s: its supervisor is gone; the next start removes it)", ErrNotRunning, path)
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (no control socket at %s)", ErrNotRunning, path)
		}
		return nil, fmt.Errorf("watchdog: control: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if err := json.NewEncoder(conn).Encode(controlRequest{Op: op}); err != nil {
		return nil, fmt.Errorf("watchdog: control: %w", err)
	}
	var resp controlResponse
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return nil, fmt.Errorf("watchdog: control: no answer from the supervisor: %w", err)
	}
	if !resp.OK {
		return nil, fmt.Errorf("watchdog: control: %s", resp.Error)
	}
	return resp.Status, nil
}

// Services lists the names of services with a control socket in stateDir.
func Services(stateDir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(stateDir, "run", "*.sock"))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		b := filepath.Base(m)
		names = append(names, b[:len(b)-len(".sock")])
	}
	return names, nil
}
