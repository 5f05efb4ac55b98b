package module

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/module/plugin"
)

// tailBytes is how much of a module process's stderr is kept for the
// report of its crash.
const tailBytes = 64 << 10

// quitGrace is how long a hung module process has to print its
// goroutines after SIGQUIT before it is killed.
const quitGrace = 2 * time.Second

// process runs, watches and restarts one module executable. Its
// goroutines: the watcher (owned by process, stopped by stop), and
// go-plugin's per connection.
type process struct {
	spec   Spec
	host   *Host
	errLog *log.Facility // nil without Host.Logs
	outLog *log.Facility

	cur  atomic.Pointer[conn] // nil while down
	runs atomic.Int32

	mu       sync.Mutex // guards attached
	attached map[string]bool

	hookErrors  atomic.Uint64 // hook calls that failed or timed out
	hookSkipped atomic.Uint64 // hook calls answered CONTINUE without asking: down or slow

	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{} // closed when the watcher ends; nil if it never started
}

// conn is one running module process.
type conn struct {
	client  *goplugin.Client
	rpc     *plugin.Client
	cmd     *exec.Cmd
	pid     int
	started time.Time
	stderr  *tail
	exited  chan struct{}     // closed once the process was reaped
	exitErr error             // set before exited is closed
	lines   []*log.LineWriter // the output streams' line splitters
	// slow is set when a hook call gets no answer in time, and cleared by
	// the next answered heartbeat: meanwhile hook calls answer CONTINUE
	// at once instead of each waiting hook_timeout.
	slow atomic.Bool
}

// kill ends the process (if it still runs) and go-plugin's goroutines,
// and flushes the last partial line of its output.
func (c *conn) kill() {
	c.client.Kill()
	for _, lw := range c.lines {
		lw.Close()
	}
}

// moduleEnv is the environment of a module process: the host's (with
// go-plugin's handshake variables) without what ties a process to the
// supervisor, so a module cannot speak for the service: the notify
// socket and the descriptors of the heart table, crash output and
// control channel (which it does not inherit anyway).
func moduleEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "NOTIFY_SOCKET", k == "WATCHDOG_USEC", k == "WATCHDOG_PID", k == "LISTEN_FDS", k == "LISTEN_PID", k == "LISTEN_FDNAMES":
		case strings.HasPrefix(k, "MTEV_") && strings.HasSuffix(k, "_FD"):
		default:
			out = append(out, kv)
		}
	}
	return out
}

func newProcess(sp Spec, h *Host) *process {
	p := &process{spec: sp, host: h, attached: map[string]bool{}, stopCh: make(chan struct{})}
	if h.Logs != nil {
		p.errLog = h.Logs.Facility("error/module/" + sp.Name)
		p.outLog = h.Logs.Facility("notice/module/" + sp.Name)
	}
	return p
}

// start is the first start, at Load: onload (process start, handshake),
// config and init. A failure stops the process and names the stage.
func (p *process) start(ctx context.Context) error {
	c, stage, err := p.launch(true)
	if err != nil {
		return stageErr(p.spec, stage, err)
	}
	p.cur.Store(c)
	return nil
}

func (p *process) postInit() error {
	c := p.cur.Load()
	if c == nil {
		return errors.New("module process is not running")
	}
	return c.rpc.PostInit(p.spec.CallTimeout)
}

// launch starts a process and runs the lifecycle up to init (first) or
// up to post_init (a restart).
func (p *process) launch(first bool) (*conn, Stage, error) {
	c := &conn{exited: make(chan struct{}), stderr: &tail{max: tailBytes}}
	// Three streams reach the host: the process's fd 2 (where a Go
	// panic goes) and what it writes to os.Stdout and os.Stderr, which
	// go-plugin's server forwards over the connection. Each is split
	// into lines of its own, and all are kept for a crash report.
	stream := func() io.Writer {
		if p.outLog == nil {
			return c.stderr
		}
		lw := p.outLog.LineWriter(nil)
		c.lines = append(c.lines, lw)
		return io.MultiWriter(c.stderr, lw)
	}
	c.client = goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		Plugins:          goplugin.PluginSet{plugin.Name: &plugin.RPCPlugin{}},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolNetRPC},
		RunnerFunc: func(_ hclog.Logger, tmpl *exec.Cmd, _ string) (runner.Runner, error) {
			return newRunner(p.spec.Path, moduleEnv(tmpl.Env), c)
		},
		Stderr:       stream(),
		SyncStdout:   stream(),
		SyncStderr:   stream(),
		Logger:       hclog.NewNullLogger(),
		StartTimeout: p.spec.CallTimeout,
	})
	fail := func(st Stage, err error) (*conn, Stage, error) {
		c.kill()
		return nil, st, err
	}
	proto, err := c.client.Client()
	if err != nil {
		// Kill returns once the process's stderr has been read to
		// its end: the message can quote it.
		c.kill()
		return nil, StageOnload, fmt.Errorf("start %s: %w%s", p.spec.Path, err, fatalOutput(c.stderr.bytes()))
	}
	raw, err := proto.Dispense(plugin.Name)
	if err != nil {
		return fail(StageOnload, fmt.Errorf("handshake: %w", err))
	}
	c.rpc = raw.(*plugin.Client)
	c.started = time.Now()
	p.runs.Add(1)
	if err := c.rpc.Config(p.spec.Config, p.spec.CallTimeout); err != nil {
		return fail(StageConfig, err)
	}
	d, err := c.rpc.Describe(p.spec.CallTimeout)
	if err != nil {
		return fail(StageInit, err)
	}
	if err := p.attach(d.Hooks); err != nil {
		if first {
			return fail(StageInit, err)
		}
		p.logErr(err)
	}
	if err := c.rpc.Init(p.spec.Name, p.spec.CallTimeout); err != nil {
		return fail(StageInit, err)
	}
	if !first {
		if err := c.rpc.PostInit(p.spec.CallTimeout); err != nil {
			return fail(StagePostInit, err)
		}
	}
	return c, "", nil
}

// attach attaches the hook points the module names, each once for the
// life of the host: the function forwards to whichever process runs now.
func (p *process) attach(points []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, pt := range points {
		if p.attached[pt] {
			continue
		}
		if err := hook.AttachJSON(pt, "module:"+p.spec.Name, p.forward(pt)); err != nil {
			errs = append(errs, err)
			continue
		}
		p.attached[pt] = true
	}
	return errors.Join(errs...)
}

// forward is the hook function of one point: the module's answer, or
// CONTINUE while the module is down, slow (hook_timeout) or failing.
func (p *process) forward(point string) func([]byte) hook.Result {
	return func(v []byte) hook.Result {
		c := p.cur.Load()
		if c == nil || c.slow.Load() {
			p.hookSkipped.Add(1)
			return hook.Continue
		}
		r, err := c.rpc.Hook(point, v, p.spec.HookTimeout)
		if err != nil {
			if errors.Is(err, plugin.ErrTimeout) {
				c.slow.Store(true)
			}
			p.hookErrors.Add(1)
			return hook.Continue
		}
		return r
	}
}

func (p *process) status(i *Info) {
	i.PID, i.Up = 0, false
	if c := p.cur.Load(); c != nil {
		i.PID, i.Up = c.pid, true
	}
	i.Runs = int(p.runs.Load())
	i.HookErrors = p.hookErrors.Load()
	i.HookSkipped = p.hookSkipped.Load()
}

// watch starts the watcher.
func (p *process) watch() {
	p.done = make(chan struct{})
	go p.loop()
}

// stop ends the watcher and the process. Idempotent.
func (p *process) stop() {
	p.stopOnce.Do(func() { close(p.stopCh) })
	if p.done != nil {
		<-p.done
	}
	if c := p.cur.Swap(nil); c != nil {
		c.kill()
	}
}

// loop watches the running process, and after a crash or hang starts a
// new one with exponential backoff (jittered), reset after a run longer
// than restart_backoff_max.
func (p *process) loop() {
	defer close(p.done)
	backoff := p.spec.RestartBackoff
	for {
		c := p.cur.Load()
		if !p.watchConn(c) {
			return
		}
		if time.Since(c.started) > p.spec.RestartBackoffMax {
			backoff = p.spec.RestartBackoff
		}
		for {
			d := backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, p.spec.RestartBackoffMax)
			select {
			case <-p.stopCh:
				return
			case <-time.After(d):
			}
			nc, stage, err := p.launch(false)
			if err == nil {
				p.cur.Store(nc)
				if p.outLog != nil {
					p.outLog.Log().Int("pid", nc.pid).Int("run", int(p.runs.Load())).Msg("module process restarted")
				}
				break
			}
			p.logErr(fmt.Errorf("module %s: restart: %s: %w", p.spec.Name, stage, err))
		}
	}
}

// watchConn beats c's heart until it crashes or hangs (reported, the
// process gone: true) or the process is stopped (false).
func (p *process) watchConn(c *conn) bool {
	t := time.NewTicker(p.spec.Heartbeat)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-p.stopCh:
			return false
		case <-c.exited:
			p.crashed(c)
			return true
		case <-t.C:
		}
		pong := make(chan error, 1)
		go func() { pong <- c.rpc.Ping(p.spec.HeartbeatTimeout) }()
		var err error
		select {
		case <-p.stopCh:
			return false
		case <-c.exited:
			p.crashed(c)
			return true
		case err = <-pong:
		}
		if err == nil {
			last = time.Now()
			c.slow.Store(false)
			continue
		}
		if !errors.Is(err, plugin.ErrTimeout) {
			// The connection broke: the process is dying, or it
			// closed its end and lives on; give it the heartbeat
			// timeout to be reaped.
			select {
			case <-c.exited:
				p.crashed(c)
				return true
			case <-time.After(p.spec.HeartbeatTimeout):
			case <-p.stopCh:
				return false
			}
		}
		p.hung(c, time.Since(last), err)
		return true
	}
}

func (p *process) labels(c *conn, event string) map[string]string {
	return map[string]string{
		"mtev.module":  p.spec.Name,
		"module.image": p.spec.Image,
		"module.pid":   strconv.Itoa(c.pid),
		"module.event": event,
	}
}

// crashed reports a process that exited on its own, with its fatal
// output, and cleans up after it.
func (p *process) crashed(c *conn) {
	p.cur.CompareAndSwap(c, nil)
	detail := fmt.Sprintf("module %s process %d exited: %v%s", p.spec.Name, c.pid, exitText(c.exitErr), fatalOutput(c.stderr.bytes()))
	p.report(Stall{
		Source: "module", Name: p.spec.Name, Detail: detail,
		Elapsed: time.Since(c.started), Labels: p.labels(c, "crash"),
	})
	c.kill()
}

// hung reports a process whose heart stopped, while it still runs (so its
// PID can be captured), then kills it: SIGQUIT first, so a Go module
// prints its goroutines to stderr (kept in the log), then SIGKILL.
func (p *process) hung(c *conn, elapsed time.Duration, why error) {
	p.cur.CompareAndSwap(c, nil)
	labels := p.labels(c, "hang")
	detail := fmt.Sprintf("module %s process %d: heartbeat unanswered: %v", p.spec.Name, c.pid, why)
	// The module's own account, taken without its call lock: which call
	// hangs, and every goroutine.
	if st, err := c.rpc.Stacks(p.spec.HeartbeatTimeout); err == nil {
		if st.Running != "" {
			labels["mtev.module.call"] = st.Running
			detail += fmt.Sprintf("; %s running for %v", st.Running, st.For.Round(time.Millisecond))
		}
		detail += "\n" + string(bytes.TrimSpace(st.Stacks))
	}
	p.report(Stall{
		Source: "module", Name: p.spec.Name, Detail: detail,
		Elapsed: elapsed, Deadline: p.spec.HeartbeatTimeout,
		Labels: labels, PID: c.pid,
	})
	_ = syscall.Kill(c.pid, syscall.SIGQUIT)
	select {
	case <-c.exited:
	case <-time.After(quitGrace):
		_ = c.cmd.Process.Kill()
	}
	c.kill()
}

func (p *process) report(s Stall) {
	if p.host.Report != nil {
		p.host.Report(s)
		return
	}
	p.logErr(errors.New(s.Detail))
}

func (p *process) logErr(err error) {
	if p.errLog != nil {
		p.errLog.Log().Err(err).Msg("module process")
		return
	}
	fmt.Fprintf(os.Stderr, "module %s: %v\n", p.spec.Name, err)
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// fatalOutput returns the end of a process's stderr worth reporting: from
// the last Go "panic:" or "fatal error:" line on, else the last 4 KiB;
// empty when there is none.
func fatalOutput(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	i := max(bytes.LastIndex(b, []byte("\npanic: ")), bytes.LastIndex(b, []byte("\nfatal error: ")))
	switch {
	case bytes.HasPrefix(b, []byte("panic: ")) || bytes.HasPrefix(b, []byte("fatal error: ")):
		if i < 0 {
			i = 0
		}
	case i < 0 && len(b) > 4096:
		i = len(b) - 4096
	case i < 0:
		i = 0
	}
	return "\n" + string(bytes.TrimSpace(b[i:]))
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf)
}

// procRunner is go-plugin's runner for a module process: it starts the
// executable so that it dies with the host (PR_SET_PDEATHSIG), and
// records its exit for the watcher.
type procRunner struct {
	c              *conn
	stdout, stderr io.ReadCloser
	once           sync.Once
}

func newRunner(path string, env []string, c *conn) (*procRunner, error) {
	cmd := exec.Command(path)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	c.cmd = cmd
	return &procRunner{c: c, stdout: stdout, stderr: stderr}, nil
}

func (r *procRunner) Start(context.Context) error {
	if err := r.c.cmd.Start(); err != nil {
		return err
	}
	r.c.pid = r.c.cmd.Process.Pid
	return nil
}

func (r *procRunner) Wait(context.Context) error {
	err := r.c.cmd.Wait()
	r.once.Do(func() {
		r.c.exitErr = err
		close(r.c.exited)
	})
	return err
}

func (r *procRunner) Kill(context.Context) error {
	if err := r.c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

func (r *procRunner) Diagnose(context.Context) string {
	return "the module executable did not complete the go-plugin handshake: is it built with pkg/module/plugin.Serve?"
}
func (r *procRunner) Stdout() io.ReadCloser                            { return r.stdout }
func (r *procRunner) Stderr() io.ReadCloser                            { return r.stderr }
func (r *procRunner) Name() string                                     { return r.c.cmd.Path }
func (r *procRunner) ID() string                                       { return strconv.Itoa(r.c.pid) }
func (r *procRunner) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (r *procRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }
