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
)

// A Fleet's control socket speaks one JSON request per line and answers
// each with one JSON line, like a Supervisor's (same mode 0600 and peer
// check):
//
//	{"op":"status"}                      → {"ok":true,"services":[...]}
//	{"op":"stop","service":"db"}         → {"ok":true,"services":[...]} once stopped
//	{"op":"start"|"restart","service":"db"} → {"ok":true,"services":[...]} once asked
//	{"op":"reload"}                      → {"ok":true} or {"ok":false,"error":"file:line: ..."}
//
// An empty service means every service.
type fleetRequest struct {
	Op      string `json:"op"`
	Service string `json:"service,omitempty"`
}

type fleetResponse struct {
	OK       bool            `json:"ok"`
	Error    string          `json:"error,omitempty"`
	Services []ServiceStatus `json:"services,omitempty"`
}

// FleetSocketPath is where the control socket of the named Fleet lives.
func FleetSocketPath(stateDir, name string) string {
	return filepath.Join(stateDir, "fleet", name+".sock")
}

// Fleets lists the names of Fleets with a control socket in stateDir.
func Fleets(stateDir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(stateDir, "fleet", "*.sock"))
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

type fleetControl struct {
	ln *net.UnixListener
	wg sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool
}

func listenFleet(path string) (*fleetControl, error) {
	ln, err := listenPrivate(path, "watchdog: fleet: ")
	if errors.Is(err, errSocketAnswers) {
		return nil, fmt.Errorf("watchdog: fleet: already running (control socket %s answers)", path)
	}
	if err != nil {
		return nil, err
	}
	return &fleetControl{ln: ln, conns: map[net.Conn]bool{}}, nil
}

func (fc *fleetControl) serve(f *Fleet) {
	for {
		conn, err := fc.ln.AcceptUnix()
		if err != nil {
			return
		}
		if _, ok := peerAllowed(conn); !ok {
			conn.Close()
			continue
		}
		fc.mu.Lock()
		fc.conns[conn] = true
		fc.mu.Unlock()
		fc.wg.Add(1)
		go func() {
			defer fc.wg.Done()
			defer func() {
				fc.mu.Lock()
				delete(fc.conns, conn)
				fc.mu.Unlock()
				conn.Close()
			}()
			fc.conn(f, conn)
		}()
	}
}

func (fc *fleetControl) conn(f *Fleet, conn net.Conn) {
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 4096), 64<<10)
	enc := json.NewEncoder(conn)
	for sc.Scan() {
		var req fleetRequest
		var resp fleetResponse
		var err error
		if err = json.Unmarshal(sc.Bytes(), &req); err != nil {
			err = fmt.Errorf("bad request: %w", err)
		} else {
			switch req.Op {
			case "status":
			case "start":
				err = f.Start(req.Service)
			case "stop":
				err = f.Stop(req.Service)
			case "restart":
				err = f.Restart(req.Service)
			case "reload":
				if f.opts.Reload == nil {
					err = errors.New("reload: not supported")
				} else {
					err = f.opts.Reload()
				}
			default:
				err = fmt.Errorf("unknown op %q", req.Op)
			}
		}
		if err == nil {
			resp.Services, err = f.Status()
		}
		if err != nil {
			resp.Error = err.Error()
		} else {
			resp.OK = true
		}
		if enc.Encode(resp) != nil {
			return
		}
	}
}

// close stops accepting, ends open connections and waits for them.
func (fc *fleetControl) close() {
	fc.ln.Close()
	fc.mu.Lock()
	for c := range fc.conns {
		c.Close()
	}
	fc.mu.Unlock()
	fc.wg.Wait()
}

// FleetControl sends one request to the Fleet name in stateDir and returns
// its services' status after the operation (service "" means all).
func FleetControl(ctx context.Context, stateDir, name, op, service string) ([]ServiceStatus, error) {
	path := FleetSocketPath(stateDir, name)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (fleet %s: no answer at %s)", ErrNotRunning, name, path)
		}
		return nil, fmt.Errorf("watchdog: fleet control: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if err := json.NewEncoder(conn).Encode(fleetRequest{Op: op, Service: service}); err != nil {
		return nil, fmt.Errorf("watchdog: fleet control: %w", err)
	}
	var resp fleetResponse
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return nil, fmt.Errorf("watchdog: fleet control: no answer: %w", err)
	}
	if !resp.OK {
		return nil, fmt.Errorf("watchdog: fleet control: %s", resp.Error)
	}
	return resp.Services, nil
}
