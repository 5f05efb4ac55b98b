package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// startupTimeoutDoc says what 0 means, from the one place the hearts'
// default is set.
var startupTimeoutDoc = "with --notify: no READY=1 within this is a stall (0: no deadline); with hearts: the longest a heart may go before its first beat (0: " + watchdog.DefaultHeartStartup.String() + ")"

const (
	runSynopsis     = "run [flags] -- CMD [ARGS...]"
	outputFormatDoc = "how child output is written: plain (as is), prefix (name[pid]: line) or json (one object per line)"
)

func init() {
	Register(&Command{
		Name:    "run",
		Summary: "run a command under supervision: restart it, watch it, record why it died",
		Run:     runCmd,
	})
}

// runFlags are the flags of `run`, bound to a watchdog.Config.
type runFlags struct {
	cfg      watchdog.Config
	stateDir string
	restart  string
	stopSig  string
	output   string
	hearts   string
	access   string
	quiet    bool
	config   string

	logFile        string
	logRotateBytes int64
	logRetain      int

	metricsListen string
}

func (f *runFlags) bind(fs *flag.FlagSet) {
	c := &f.cfg
	fs.StringVar(&c.Name, "name", "", "service name (default: base name of CMD)")
	fs.StringVar(&f.stateDir, "state-dir", "", "journal and control socket directory (default: $MTEV_STATE_DIR, else $XDG_STATE_HOME/mtev-supervise)")
	fs.StringVar(&f.restart, "restart", string(watchdog.DefaultRestart), "restart policy: always, on-failure or never")
	fs.DurationVar(&c.BackoffMin, "backoff-min", watchdog.DefaultBackoffMin, "first delay before a restart; grows exponentially with jitter")
	fs.DurationVar(&c.BackoffMax, "backoff-max", watchdog.DefaultBackoffMax, "longest delay before a restart")
	fs.DurationVar(&c.BackoffReset, "backoff-reset", watchdog.DefaultBackoffReset, "a run this long resets the backoff")
	fs.IntVar(&c.Retries, "retries", watchdog.DefaultRetries, "crash-loop limit: this many deaths within --span end the supervisor with status 3 (0 or 1: never restart, as in libmtev)")
	fs.DurationVar(&c.Span, "span", watchdog.DefaultSpan, "crash-loop window")
	fs.StringVar(&f.stopSig, "stop-signal", "TERM", "signal for a graceful stop")
	fs.DurationVar(&c.StopTimeout, "stop-timeout", watchdog.DefaultStopTimeout, "after this, the child's process group is killed")
	fs.BoolVar(&c.Notify, "notify", false, "the child speaks the systemd notify protocol (NOTIFY_SOCKET)")
	fs.StringVar(&f.access, "notify-access", string(watchdog.NotifyMain), "whose notify messages count: main (the child and its live descendants), exec (also senders that exited before they were read), all (any process of this user) or none")
	fs.DurationVar(&c.StartupTimeout, "startup-timeout", 0, startupTimeoutDoc)
	fs.DurationVar(&c.Watchdog, "watchdog", 0, "with --notify: no WATCHDOG=1 for this long after READY=1 is a stall")
	fs.IntVar(&c.LogTail, "log-tail", watchdog.DefaultLogTail, "lines of child output kept with each incident")
	fs.StringVar(&f.hearts, "hearts", string(watchdog.HeartsAuto), "heart table: auto (watch hearts a linked child creates), require (a child without a heart by --startup-timeout is stalled) or off")
	fs.DurationVar(&c.HeartTimeout, "heart-timeout", watchdog.DefaultHeartTimeout, "timeout of hearts created without one: past it, a soft stall (capture, keep running)")
	fs.DurationVar(&c.HeartGrace, "heart-grace", watchdog.DefaultHeartGrace, "past timeout+grace, a hard stall (capture, kill, restart)")
	fs.BoolVar(&c.NoSoftStall, "no-soft-stall", false, "capture only at the hard deadline")
	fs.DurationVar(&c.DumpBudget, "dump-budget", watchdog.DefaultDumpBudget, "how long a linked child may take to answer a dump request")
	fs.StringVar(&c.Glider, "glider", "", "external tracer run at every stall as '<glider> <pid> watchdog/<heart>'; its output is kept with the record")
	fs.DurationVar(&c.GliderBudget, "glider-budget", watchdog.DefaultGliderBudget, "the glider is killed after this long")
	fs.BoolVar(&c.CoreDumps, "core-dumps", false, "raise the child's RLIMIT_CORE and keep each crash's core file with its record")
	fs.DurationVar(&c.CaptureBudget, "capture-budget", watchdog.DefaultCaptureBudget, "budget of a capture from outside with Delve")
	fs.Int64Var(&c.ArtifactMaxBytes, "artifacts-max-bytes", watchdog.DefaultArtifactMaxBytes, "files kept with records (dumps, cores, glider output) beyond this total are removed, oldest incident first (-1: keep all)")
	fs.Int64Var(&c.JournalMaxBytes, "journal-max-bytes", 0, "journal retention by total size (0: 64 MiB; -1: unlimited)")
	fs.DurationVar(&c.JournalMaxAge, "journal-max-age", 0, "journal retention by age (0: 30 days)")
	fs.IntVar(&c.SameCrashLimit, "same-crash-limit", 0, "stop (status 4) when this many incidents share one fingerprint within --same-crash-span (0: off)")
	fs.DurationVar(&c.SameCrashSpan, "same-crash-span", watchdog.DefaultSameCrashSpan, "window of --same-crash-limit")
	fs.StringVar(&f.output, "output", "plain", outputFormatDoc)
	fs.BoolVar(&f.quiet, "quiet", false, "do not print supervisor events")
	fs.StringVar(&f.logFile, "log-file", "", "also write child output and supervisor events to this file (rotated; reopened on USR1)")
	fs.Int64Var(&f.logRotateBytes, "log-rotate-bytes", 64<<20, "with --log-file: rotate past this size")
	fs.IntVar(&f.logRetain, "log-retain", 10, "with --log-file: rotated files kept")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus /metrics about the service on this address (host:port; off by default)")
	// Process attributes of the child (procexec.go).
	bindProcFlags(fs, c)
	fs.StringVar(&f.config, "config", "", "XML file with a <run> section: every flag as an attribute, <command>, <arg> and <env> children; flags win")
	// Sockets held by the supervisor (sockets.go).
	fs.Var(listenFlag{&c.Listen}, "listen", listenDoc)
	fs.IntVar(&c.FDStoreMax, "fdstore-max", watchdog.DefaultFDStoreMax, fdstoreMaxDoc)
	// Containers (init.go, docs/deploy.md).
	fs.BoolVar(&c.Init, "init", false, "act as a container's init (automatic as PID 1): forward every catchable signal not acted on to the child, and end with the child's status after a stop")
	// Probes (probes.go).
	bindProbes(fs, c)
}

// resolve turns the flags into a watchdog.Config.
func (f *runFlags) resolve(env *Env, command []string) (watchdog.Config, error) {
	c := f.cfg
	c.Command = command
	dir, err := stateDir(env, f.stateDir)
	if err != nil {
		return c, err
	}
	c.StateDir = dir
	p, err := watchdog.ParsePolicy(f.restart)
	if err != nil {
		return c, usageError("--restart: %v", err)
	}
	c.Restart = p
	sig, err := parseSignal(f.stopSig)
	if err != nil {
		return c, usageError("--stop-signal: %v", err)
	}
	c.StopSignal = sig
	if c.BackoffMin == 0 {
		c.ZeroBackoff = true
	}
	c.Hearts = watchdog.HeartsMode(f.hearts)
	a, err := watchdog.ParseNotifyAccess(f.access)
	if err != nil {
		return c, usageError("--notify-access: %v", err)
	}
	c.NotifyAccess = a
	switch {
	case c.Retries < 0:
		return c, usageError("--retries %d: want 0 or more", c.Retries)
	case c.Retries == 0:
		// libmtev treats 0 and 1 alike: the first death ends it. (The
		// Config's zero value means the default.)
		c.Retries = 1
	}
	switch f.output {
	case "plain", "prefix", "json":
	default:
		return c, usageError("--output %q: want plain, prefix or json", f.output)
	}
	// Sockets held by the supervisor: 0 turns the store off.
	switch {
	case c.FDStoreMax < 0:
		return c, usageError("--fdstore-max %d: want 0 or more", c.FDStoreMax)
	case c.FDStoreMax == 0:
		c.FDStoreMax = -1
	}
	// Containers: PID 1 is an init whether it was asked to be or not.
	c.Init = c.Init || isPID1()
	// Probes (probes.go).
	if err := checkProbes(c); err != nil {
		return c, err
	}
	return c, nil
}

func parseSignal(s string) (syscall.Signal, error) {
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func runCmd(ctx context.Context, env *Env, args []string) error {
	logs := log.New(log.WithStderr(env.Stderr))
	defer logs.Close()
	cfg, f, err := loadRun(env, args, logs)
	if err != nil {
		return err
	}
	if f.logFile != "" {
		if err := logToFile(logs, f); err != nil {
			return usageError("--log-file: %v", err)
		}
	}
	if f.metricsListen != "" {
		stop, err := serveMetrics(f.metricsListen, cfg.StateDir, metricsService(cfg), env.Stderr)
		if err != nil {
			return usageError("--metrics-listen: %v", err)
		}
		defer stop()
	}
	var reload func() (watchdog.Config, error)
	if f.config != "" {
		// HUP re-reads the file; the command line still wins. The
		// <logs> section is read at start only.
		reload = func() (watchdog.Config, error) {
			cfg, _, err := loadRun(env, args, nil)
			return cfg, err
		}
	}
	return supervise(ctx, env, cfg, f.output, f.quiet, logs, reload)
}

// logToFile sends child output and supervisor events to a rotating file
// through the log graph (facility "output", type file, plain).
func logToFile(logs *log.Graph, f *runFlags) error {
	err := logs.Configure(log.Spec{
		Name: "output",
		Type: "file",
		Path: f.logFile,
		File: log.FileOptions{RotateBytes: f.logRotateBytes, RetainCount: f.logRetain},
	})
	if err != nil {
		return err
	}
	for _, from := range []string{"child", "supervisor"} {
		logs.Facility(from)
		if err := logs.Connect(from, "output"); err != nil {
			return err
		}
	}
	return nil
}

// loadRun parses the flags of `run` and the configuration file they name;
// logs, when not nil, is configured from the file's <logs> section.
func loadRun(env *Env, args []string, logs *log.Graph) (watchdog.Config, *runFlags, error) {
	var f runFlags
	fs := newFlagSet(env, "run", runSynopsis)
	f.bind(fs)
	if err := parseFlags(fs, args); err != nil {
		return watchdog.Config{}, nil, err
	}
	command := fs.Args()
	var extraEnv []string
	if f.config != "" {
		fileCommand, fileEnv, err := applyConfig(f.config, fs, logs)
		if err != nil {
			return watchdog.Config{}, nil, err
		}
		if len(command) == 0 {
			command = fileCommand
		}
		extraEnv = fileEnv
	}
	if len(command) == 0 {
		return watchdog.Config{}, nil, usageError("no command: mtev-supervise %s", runSynopsis)
	}
	cfg, err := f.resolve(env, command)
	if err != nil {
		return watchdog.Config{}, nil, err
	}
	cfg.Env = append(cfg.Env, extraEnv...)
	// Sockets systemd passed to `run` (a .socket unit) are held and
	// passed on to every child, as --listen sockets are.
	cfg.AdoptInherited = true
	return cfg, &f, nil
}

// supervise runs a supervisor until it ends and maps its end to an exit
// status. TERM and INT stop it gracefully (ctx); HUP, USR1 and USR2 are
// forwarded to the child, and as an init every other catchable signal
// (init.go). With reload set, HUP first reloads the
// configuration: a bad file is reported (file:line) and changes nothing.
// USR1 also reopens the log graph's files. Child output and supervisor
// events go to the terminal (per output) and through logs, facilities
// "child/stdout", "child/stderr" and "supervisor", which reach nothing
// unless the configuration connects them.
func supervise(ctx context.Context, env *Env, cfg watchdog.Config, output string, quiet bool, logs *log.Graph, reload func() (watchdog.Config, error), opts ...func(*outputWriter)) error {
	w := newOutputWriter(env, output)
	w.quiet = quiet
	for _, o := range opts {
		o(w)
	}
	if logs != nil {
		w.facilities = map[watchdog.Stream]*log.Facility{
			watchdog.Stdout: logs.Facility("child/stdout"),
			watchdog.Stderr: logs.Facility("child/stderr"),
		}
		w.supervisor = logs.Facility("supervisor")
	}
	sup, err := watchdog.New(cfg, watchdog.Options{
		Output: w.line,
		Events: w.event,
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	w.service = sup.Config().Name

	// Caught since the process started (earlySignals); those that came
	// before the supervisor existed are forwarded now.
	fwd := earlySignals
	// As an init, every other catchable signal goes to the child too.
	defer initSignals(cfg.Init)()
	fwdDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case sig := <-fwd:
				if sig == syscall.SIGUSR1 && logs != nil {
					if err := logs.Reopen(); err != nil {
						w.event(watchdog.Warning{Err: fmt.Errorf("reopen logs: %w", err)})
					}
				}
				if sig == syscall.SIGHUP && reload != nil {
					if err := reconfigure(sup, reload); err != nil {
						w.event(watchdog.Warning{Err: fmt.Errorf("reload refused, the running configuration stays: %w", err)})
					}
				}
				if err := sup.Signal(sig.(syscall.Signal)); err != nil && !errors.Is(err, watchdog.ErrNotRunning) {
					w.event(watchdog.Warning{Err: err})
				}
			case <-fwdDone:
				return
			}
		}
	}()
	err = sup.Serve(ctx)
	close(fwdDone)
	wg.Wait()
	return runStatus(err)
}

func reconfigure(sup *watchdog.Supervisor, reload func() (watchdog.Config, error)) error {
	cfg, err := reload()
	if err != nil {
		return err
	}
	return sup.Reconfigure(cfg)
}

// runStatus maps the end of a supervisor to its documented exit status.
func runStatus(err error) error {
	code := watchdog.ExitStatus(err)
	switch code {
	case watchdog.ExitOK:
		return nil
	case watchdog.ExitConfig:
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	var ce *watchdog.ChildExitError
	if errors.As(err, &ce) {
		return &StatusError{Code: code} // the child's own status, already reported
	}
	return &StatusError{Code: code, Err: err}
}

// outputWriter writes child lines and supervisor events, one whole line
// per write, so that lines from the two streams never interleave.
type outputWriter struct {
	mu      sync.Mutex
	stdout  io.Writer
	stderr  io.Writer
	format  string
	service string
	buf     []byte
	quiet   bool // events go to the log graph only
	// filter, when set, says whether a child line reaches the terminal
	// (the log graph gets every line).
	filter func(watchdog.Line) bool

	// Log facilities (nil without a graph); looked up once, since a
	// line's path must stay cheap.
	facilities map[watchdog.Stream]*log.Facility
	supervisor *log.Facility
}

func newOutputWriter(env *Env, format string) *outputWriter {
	return &outputWriter{stdout: env.Stdout, stderr: env.Stderr, format: format}
}

func (w *outputWriter) line(l watchdog.Line) {
	if f := w.facilities[l.Stream]; f != nil {
		if e := f.Log(); e != nil {
			e.Str("service", w.service).Int("pid", l.PID).Bool("partial", l.Partial).Msg(string(l.Text))
		}
	}
	if w.filter != nil && !w.filter(l) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	dst := w.stdout
	if l.Stream == watchdog.Stderr {
		dst = w.stderr
	}
	b := w.buf[:0]
	switch w.format {
	case "prefix":
		b = fmt.Appendf(b, "%s[%d]: ", w.service, l.PID)
		b = append(b, l.Text...)
	case "json":
		dst = w.stdout
		rec := struct {
			Time    time.Time `json:"time"`
			Service string    `json:"service"`
			PID     int       `json:"pid"`
			Stream  string    `json:"stream"`
			Line    string    `json:"line"`
			Partial bool      `json:"partial,omitempty"`
		}{time.Now(), w.service, l.PID, string(l.Stream), string(l.Text), l.Partial}
		b, _ = json.Marshal(rec)
	default:
		b = append(b, l.Text...)
	}
	if !l.Partial || w.format == "json" {
		b = append(b, '\n')
	}
	dst.Write(b)
	w.buf = b[:0]
}

func (w *outputWriter) event(e watchdog.Event) {
	if w.supervisor != nil {
		if le := w.supervisor.Log(); le != nil {
			le.Str("service", w.service).Str("event", fmt.Sprintf("%T", e)[len("watchdog."):]).Msg(e.String())
		}
	}
	if w.quiet {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.format == "json" {
		b, _ := json.Marshal(struct {
			Time    time.Time `json:"time"`
			Service string    `json:"service"`
			Event   string    `json:"event"`
			Message string    `json:"message"`
		}{time.Now(), w.service, fmt.Sprintf("%T", e)[len("watchdog."):], e.String()})
		w.stderr.Write(append(b, '\n'))
		return
	}
	fmt.Fprintf(w.stderr, "mtev-supervise[%s]: %s\n", w.service, e)
}
