package watchdog

// Probes: what one probe is and how it is run. When probes run and what
// their results do is in probes.go.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mtev-supervise/mtev-supervise/internal/reap"
)

// ProbeKind is how a probe checks the child.
type ProbeKind string

const (
	// ProbeHTTP: a GET; a status from 200 to 399 passes (Kubernetes'
	// httpGet). Redirects are not followed.
	ProbeHTTP ProbeKind = "http"
	// ProbeHTTPS: as ProbeHTTP over TLS, without verifying the
	// certificate (as Kubernetes does).
	ProbeHTTPS ProbeKind = "https"
	// ProbeTCP: a connection is opened and closed at once (tcpSocket).
	ProbeTCP ProbeKind = "tcp"
	// ProbeExec: a command run by /bin/sh -c passes when it exits with
	// status 0 (exec).
	ProbeExec ProbeKind = "exec"
)

// Probe is a parsed probe target: "http://HOST:PORT/PATH",
// "https://HOST:PORT/PATH", "tcp://HOST:PORT" or "exec:COMMAND".
type Probe struct {
	Kind    ProbeKind
	URL     *url.URL // http, https
	Addr    string   // tcp: host:port
	Command string   // exec: the shell command
}

// ErrProbeSpec marks a probe target that cannot be parsed.
var ErrProbeSpec = errors.New("watchdog: bad probe")

// ParseProbe parses a probe target. A port is always required: a probe
// never guesses where the service listens.
func ParseProbe(spec string) (Probe, error) {
	bad := func(format string, args ...any) (Probe, error) {
		return Probe{}, fmt.Errorf("%w %q: %s", ErrProbeSpec, spec, fmt.Sprintf(format, args...))
	}
	if cmd, ok := strings.CutPrefix(spec, "exec:"); ok {
		if strings.TrimSpace(cmd) == "" {
			return bad("empty command (want exec:COMMAND)")
		}
		if strings.ContainsRune(cmd, 0) {
			return bad("the command holds a NUL byte")
		}
		return Probe{Kind: ProbeExec, Command: cmd}, nil
	}
	scheme, _, ok := strings.Cut(spec, "://")
	if !ok {
		return bad("want http://HOST:PORT/PATH, https://HOST:PORT/PATH, tcp://HOST:PORT or exec:COMMAND")
	}
	kind := ProbeKind(strings.ToLower(scheme))
	switch kind {
	case ProbeHTTP, ProbeHTTPS, ProbeTCP:
	default:
		return bad("unknown scheme %q (want http, https, tcp or exec:)", scheme)
	}
	u, err := url.Parse(spec)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return bad("%v", err)
	}
	if u.User != nil {
		return bad("credentials in the target are not supported")
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return bad("no host")
	}
	if port == "" {
		if kind == ProbeTCP {
			return bad("no port (want tcp://HOST:PORT)")
		}
		return bad("no port (want %s://HOST:PORT/PATH)", kind)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return bad("port %q: want 1 to 65535", port)
	}
	if kind == ProbeTCP {
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return bad("a tcp probe has no path (want tcp://HOST:PORT)")
		}
		return Probe{Kind: kind, Addr: net.JoinHostPort(host, port)}, nil
	}
	if u.Fragment != "" {
		return bad("a fragment is never sent: remove #%s", u.Fragment)
	}
	u.Scheme = string(kind)
	if u.Path == "" {
		u.Path = "/"
	}
	return Probe{Kind: kind, URL: u}, nil
}

// String is the probe's target in the form ParseProbe reads; it names the
// probe in events, status and records.
func (p Probe) String() string {
	switch p.Kind {
	case ProbeHTTP, ProbeHTTPS:
		return p.URL.String()
	case ProbeTCP:
		return "tcp://" + p.Addr
	case ProbeExec:
		return "exec:" + p.Command
	}
	return ""
}

// probeUserAgent is sent by HTTP probes, as kubelet sends kube-probe/N.
const probeUserAgent = "mtev-supervise-probe/1"

// probeBodyLimit bounds what is read of an HTTP probe's answer, and
// probeOutputLimit what is kept of an exec probe's output.
const (
	probeBodyLimit   = 10 << 10
	probeOutputLimit = 1 << 10
)

// prober runs one probe: one at a time, each within its timeout.
type prober struct {
	p       Probe
	timeout time.Duration
	client  *http.Client // http, https
	// exec probes: the environment and working directory, and how the
	// process is started (the supervisor's spawner thread, so that it
	// dies with the supervisor).
	env   []string
	dir   string
	start func(*exec.Cmd) error
}

func newProber(p Probe, timeout time.Duration) *prober {
	pr := &prober{p: p, timeout: timeout}
	if p.Kind == ProbeHTTP || p.Kind == ProbeHTTPS {
		pr.client = &http.Client{
			Transport: &http.Transport{
				// Probes reach the service directly, never through a
				// proxy named in the environment, and every probe opens
				// its own connection (as kubelet does): a connection
				// kept from a healthy past proves nothing now.
				Proxy:             nil,
				DisableKeepAlives: true,
				TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // see docs/probes.md: probes trust the network
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return pr
}

// close releases the prober's idle resources.
func (pr *prober) close() {
	if pr.client != nil {
		pr.client.CloseIdleConnections()
	}
}

// run runs the probe once; nil is a pass. ctx ends it early (the child
// is gone).
func (pr *prober) run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pr.timeout)
	defer cancel()
	var err error
	switch pr.p.Kind {
	case ProbeHTTP, ProbeHTTPS:
		err = pr.http(ctx)
	case ProbeTCP:
		err = pr.tcp(ctx)
	case ProbeExec:
		err = pr.exec(ctx)
	default:
		err = fmt.Errorf("unknown probe kind %q", pr.p.Kind)
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %v", pr.timeout)
	}
	return err
}

func (pr *prober) http(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pr.p.URL.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", probeUserAgent)
	req.Header.Set("Accept", "*/*")
	resp, err := pr.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, probeBodyLimit))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return nil
	}
	msg := fmt.Sprintf("status %d", resp.StatusCode)
	if b := firstLine(body); b != "" {
		msg += ": " + b
	}
	return errors.New(msg)
}

func (pr *prober) tcp(ctx context.Context) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", pr.p.Addr)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err
			var se *os.SyscallError
			if errors.As(err, &se) {
				err = se.Err
			}
			err = fmt.Errorf("connect %s: %w", pr.p.Addr, err)
		}
		return err
	}
	return c.Close()
}

// exec runs the command in a process group of its own; at the timeout
// (or when ctx ends) the whole group is killed, so that a hung command's
// children do not outlive it. What it leaves behind when it exits is
// killed too.
func (pr *prober) exec(ctx context.Context) error {
	var out limitedBuffer
	out.limit = probeOutputLimit
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", pr.p.Command)
	cmd.Env, cmd.Dir = pr.env, pr.dir
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	start := pr.start
	if start == nil {
		start = reap.Start
	}
	if err := start(cmd); err != nil {
		return fmt.Errorf("start /bin/sh: %w", err)
	}
	err := cmd.Wait()
	reap.Release(cmd.Process.Pid)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	msg := err.Error()
	if s := firstLine(out.Bytes()); s != "" {
		msg += ": " + s
	}
	return errors.New(msg)
}

// firstLine is the first non-empty line of b, at most 200 bytes.
func firstLine(b []byte) string {
	for _, l := range bytes.Split(b, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			if len(l) > 200 {
				l = append(l[:200:200], "..."...)
			}
			return strings.ToValidUTF8(string(l), "?")
		}
	}
	return ""
}

// limitedBuffer keeps the first limit bytes written to it and discards
// the rest, so that a chatty probe command costs no memory.
type limitedBuffer struct {
	bytes.Buffer
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
