package watchdog

// Spawning: the child's environment, its start through the spawner thread
// and the trampoline, and the check of each executable version. The
// policy that decides what follows a death is in policy.go, the recording
// of incidents in recording.go.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/internal/reap"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/capture"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/dump"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/hearts"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/report"
)

// childEnv is the environment of a child: ours without variables meant
// for this process, the configured extras, and the supervisor's own.
func (s *Supervisor) childEnv(start int, procEnv []string) []string {
	var env []string
	for _, kv := range s.sys.environ() {
		k, _, _ := strings.Cut(kv, "=")
		if supervisorEnv[k] {
			// Meant for this process (from systemd or a parent
			// supervisor), never for the child.
			continue
		}
		env = append(env, kv)
	}
	env = append(env, procEnv...) // HOME, USER, the env-file: below the explicit ones
	env = append(env, s.cfg.Env...)
	// Go children print every goroutine when they die, unless told
	// otherwise: that dump is the crash trace.
	if lookupEnv(env, "GOTRACEBACK") == "" {
		env = append(env, "GOTRACEBACK=all")
	}
	// Goroutine dumps carry pprof labels: the runtime labels each loop's
	// goroutine with its heart's name.
	env = append(env, "GODEBUG="+goDebug(lookupEnv(env, "GODEBUG"), "tracebacklabels=1"))
	env = append(env,
		"MTEV_SERVICE="+s.cfg.Name,
		"MTEV_STATE_DIR="+absDir(s.cfg.StateDir), // the child reads its incidents and places its console
		"MTEV_START_COUNT="+strconv.Itoa(start),
		"MTEV_SUPERVISOR_PID="+strconv.Itoa(s.sys.getpid()),
		treeEnv+"="+s.tree,
	)
	if s.notify != nil {
		env = append(env, "NOTIFY_SOCKET="+s.notify.addr)
		if s.cfg.Watchdog > 0 {
			env = append(env, "WATCHDOG_USEC="+strconv.FormatInt(s.cfg.Watchdog.Microseconds(), 10))
		}
	}
	return env
}

// startChild starts a new child. Only the first start's failure is
// returned (ErrStart); later failures count as deaths.
func (s *Supervisor) startChild() error {
	start := s.starts + 1
	c, err := s.spawnChild(start)
	if err != nil {
		if s.starts == 0 {
			return err
		}
		s.event(Warning{Err: err})
		s.afterDeath(0, false)
		return nil
	}
	s.starts = start
	s.cur = c
	s.notifyTrack(c)
	s.event(Started{PID: c.pid, StartCount: start, Command: s.cfg.Command})
	s.startProbes(c)
	if s.cfg.Notify && s.cfg.StartupTimeout > 0 {
		c.startupAt = c.started.Add(s.cfg.StartupTimeout)
		c.startupT = s.clock.NewTimer(s.cfg.StartupTimeout)
	}
	return nil
}

func (s *Supervisor) spawnChild(start int) (*child, error) {
	path, err := lookPath(s.cfg.Command[0])
	if err != nil {
		return nil, err
	}
	attrs, procEnv, err := s.procAttrs()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("watchdog: pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("watchdog: pipe: %w", err)
	}
	crashFD, err := newCrashFD()
	if err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		return nil, err
	}
	pidfd := -1
	cmd := &exec.Cmd{
		Path:   path,
		Args:   s.cfg.Command,
		Dir:    s.cfg.Dir,
		Env:    s.childEnv(start, procEnv),
		Stdin:  nil,
		Stdout: outW,
		Stderr: errW,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
			PidFD:     &pidfd,
		},
	}
	// fds 3 up: the sockets held by the supervisor and the stored
	// descriptors (sockets.go), then the crash-output memfd
	// (MTEV_CRASH_FD), the heart table, the dump and report channels.
	passed := s.passFiles(cmd)
	cmd.Env = append(cmd.Env, CrashFDEnv+"="+strconv.Itoa(3+len(cmd.ExtraFiles)))
	cmd.ExtraFiles = append(cmd.ExtraFiles, crashFD)
	client, attached, err := s.attachHearts(cmd, start)
	if err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		crashFD.Close()
		return nil, err
	}
	reports, reportsAttached, err := s.attachReports(cmd)
	if err != nil {
		attached()
		if client != nil {
			client.Close()
		}
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		crashFD.Close()
		return nil, err
	}
	var status *trampolineStatus
	if (s.cfg.Notify && s.cfg.Watchdog > 0) || !attrs.empty() || passed > 0 {
		// The trampoline applies the process attributes and sets
		// WATCHDOG_PID and LISTEN_PID to the child's own pid, only
		// known after the fork, then execs the command.
		status, err = throughTrampoline(cmd, path, attrs)
	}
	if err == nil {
		err = s.spawn.start(cmd)
	}
	if status != nil {
		if err == nil {
			err = status.await()
			if err != nil {
				// It exits 127 at once: reap it, and report a start
				// failure, as when exec fails.
				cmd.Wait()
				reap.Release(cmd.Process.Pid)
				syscall.Close(pidfd)
			}
		} else {
			status.close()
		}
	}
	outW.Close()
	errW.Close()
	attached()
	reportsAttached()
	if err != nil {
		outR.Close()
		errR.Close()
		crashFD.Close()
		reports.Close()
		if client != nil {
			client.Close()
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrStart, s.cfg.Command[0], unwrapExec(err))
	}
	c := &child{cmd: cmd, pid: cmd.Process.Pid, pidfd: pidfd, start: start, started: s.clock.Now(),
		tail: newTail(s.cfg.LogTail), mainPID: cmd.Process.Pid, outR: outR, errR: errR, crashFD: crashFD, dump: client, reports: reports}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.serveReports(c)
	}()
	c.exe = path
	// Check, off the loop, whether a capture from outside can work, and
	// warm the page cache with the executable's debug information (Delve
	// reloads it at every attach; it cannot be kept loaded). The answer is
	// reported at the first stall of a child that cannot capture itself.
	c.preload = make(chan error, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.preload <- s.preloaded.check(path)
	}()
	if s.cfg.CoreDumps {
		// Raised right after the start: a crash in the first instant
		// may still go without a core.
		unix.Prlimit(c.pid, unix.RLIMIT_CORE, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}, nil)
	}
	c.pumps.Add(2)
	go func() { defer c.pumps.Done(); pump(outR, Stdout, c.pid, s.opts.Output, c.tail, nil) }()
	go func() { defer c.pumps.Done(); pump(errR, Stderr, c.pid, s.opts.Output, c.tail, c.crash.line) }()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		werr := waitPidfd(c.pidfd)
		// Only now, with the child gone, is Wait safe: a Wait pending
		// while a capture is attached would take its ptrace stops.
		err := cmd.Wait()
		reap.Release(c.pid)
		syscall.Close(c.pidfd)
		if werr != nil {
			err = werr
		}
		s.msgs <- exitMsg{c: c, ps: cmd.ProcessState, err: err}
	}()
	return c, nil
}

func unwrapExec(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// CrashFDEnv names the fd of the crash-output memfd in a child's
// environment; a Go child points debug.SetCrashOutput at it.
const CrashFDEnv = "MTEV_CRASH_FD"

// lookupEnv returns the last value of key in env.
func lookupEnv(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// absDir makes dir absolute, so that a child in another working directory
// finds it; it returns dir unchanged if that fails.
func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}

// supervisorEnv are the variables a supervisor sets for its child; ones
// inherited from this process's own supervisor (systemd, or a parent
// mtev-supervise) are not passed on.
var supervisorEnv = map[string]bool{
	"NOTIFY_SOCKET": true, "WATCHDOG_USEC": true, "WATCHDOG_PID": true,
	hearts.EnvFD: true, dump.EnvFD: true, CrashFDEnv: true, report.EnvFD: true,
	"MTEV_SERVICE": true, "MTEV_START_COUNT": true, "MTEV_SUPERVISOR_PID": true,
	trampolineEnv: true, trampolinePathEnv: true, treeEnv: true, guardEnv: true,
	// Sockets held by the supervisor: a service manager's for this process.
	"LISTEN_FDS": true, "LISTEN_FDNAMES": true, "LISTEN_PID": true,
	trampolineAttrsEnv: true, trampolineDirEnv: true, trampolineStatusEnv: true,
}

// errNoOutsideCapture is the verdict on every executable when no capture
// from outside is linked in (package trace/delve not imported).
var errNoOutsideCapture = errors.New("watchdog: no capture from outside in this build (import pkg/trace/delve)")

// preloadCache remembers the capture.Checker's verdict per executable version,
// so that a restart loop does not read the same executable again and
// again.
type preloadCache struct {
	mu   sync.Mutex
	seen map[string]preloadResult
}

type preloadResult struct {
	mtime time.Time
	size  int64
	err   error
}

// check returns the verdict for path, running delve.Preload when the file
// is new or changed.
func (p *preloadCache) check(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	p.mu.Lock()
	r, ok := p.seen[path]
	p.mu.Unlock()
	if ok && r.mtime.Equal(fi.ModTime()) && r.size == fi.Size() {
		return r.err
	}
	if chk := capture.Check(); chk != nil {
		err = chk.Check(path)
	} else {
		err = errNoOutsideCapture
	}
	p.mu.Lock()
	if p.seen == nil {
		p.seen = map[string]preloadResult{}
	}
	p.seen[path] = preloadResult{mtime: fi.ModTime(), size: fi.Size(), err: err}
	p.mu.Unlock()
	return err
}
