package watchdog

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/hearts"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/incident"
)

// Policy says when a child that ended is started again.
type Policy string

const (
	// RestartAlways restarts after every death, clean exits included.
	RestartAlways Policy = "always"
	// RestartOnFailure restarts unless the child exited with status 0.
	RestartOnFailure Policy = "on-failure"
	// RestartNever never restarts: the supervisor ends with the child.
	RestartNever Policy = "never"
)

// ParsePolicy parses a restart policy name.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case RestartAlways, RestartOnFailure, RestartNever:
		return p, nil
	}
	return "", fmt.Errorf("watchdog: unknown restart policy %q (want always, on-failure or never)", s)
}

// NotifyAccess says whose notify messages count, like systemd's
// NotifyAccess=.
type NotifyAccess string

const (
	// NotifyMain: the main process and its live descendants only. A
	// sender that exited before its message was read is refused, unless
	// the message names, with MAINPID=, the main process or a live
	// descendant (systemd-notify --pid=...).
	NotifyMain NotifyAccess = "main"
	// NotifyExec: as main, and senders that exited before their message
	// was read are accepted too (they can no longer be placed).
	NotifyExec NotifyAccess = "exec"
	// NotifyAll: every sender that can reach the socket (the same user).
	NotifyAll NotifyAccess = "all"
	// NotifyNone: every message is ignored.
	NotifyNone NotifyAccess = "none"
)

// ParseNotifyAccess parses a notify access name.
func ParseNotifyAccess(s string) (NotifyAccess, error) {
	switch a := NotifyAccess(s); a {
	case NotifyMain, NotifyExec, NotifyAll, NotifyNone:
		return a, nil
	}
	return "", fmt.Errorf("watchdog: unknown notify access %q (want main, exec, all or none)", s)
}

// Config is what a Supervisor needs. The zero value of every optional field
// means its default; Defaults fills them in and Validate checks the result.
type Config struct {
	Name     string   // service name; default: base name of Command[0]
	Command  []string // program and arguments; Command[0] is looked up in PATH
	Dir      string   // working directory of the child; default: inherited
	Env      []string // extra environment for the child, KEY=VALUE, after the inherited one
	StateDir string   // journal and sockets live here

	Restart      Policy
	BackoffMin   time.Duration // first delay after a death (default 100ms); 0 with ZeroBackoff
	BackoffMax   time.Duration // cap of the exponential backoff (default 30s)
	BackoffReset time.Duration // a run this long resets the backoff (default 10s)
	ZeroBackoff  bool          // restart at once, every time (for benchmarks and tests)
	Retries      int           // crash-loop limit: this many deaths ... (default 5)
	Span         time.Duration // ... within this span end the supervisor (default 60s)

	StopSignal  syscall.Signal // graceful stop signal (default SIGTERM)
	StopTimeout time.Duration  // then SIGKILL to the process group (default 10s)

	Notify         bool          // the child speaks the systemd notify protocol
	NotifyAccess   NotifyAccess  // who may send notify messages (default NotifyMain)
	StartupTimeout time.Duration // no READY=1 within this is a stall (0: no deadline)
	Watchdog       time.Duration // no WATCHDOG=1 for this long after READY=1 is a stall (0: off)

	LogTail int // lines of child output kept for the incident record (default 200)

	// Heart table (see package hearts): offered to every child unless
	// Hearts is HeartsOff; a child linking pkg/runtime joins it.
	Hearts       HeartsMode
	HeartSlots   int           // default 1024
	HeartTimeout time.Duration // timeout of hearts created without one (default 5s)
	HeartGrace   time.Duration // hard deadline = timeout + grace (default 2s; negative: hard at the timeout)
	NoSoftStall  bool          // no capture at the soft deadline, only at the hard one
	DumpBudget   time.Duration // how long a child may take to answer a dump request (default 2s)

	// Glider is an external tracer run at every stall as
	// "<glider> <pid> watchdog/<heart or source>" (libmtev's convention);
	// its output is kept with the record. It runs within GliderBudget
	// (default 30s) and never blocks the supervisor's loop.
	Glider       string
	GliderBudget time.Duration
	// CoreDumps raises the child's RLIMIT_CORE so that a crash leaves a
	// core file; the supervisor moves it next to the record and reads its
	// goroutines with Delve. Where the kernel's core_pattern is a pipe
	// (systemd-coredump, apport) the core goes there instead, and the
	// record says so.
	CoreDumps bool

	// CaptureBudget bounds a capture from outside with Delve (default 10s).
	CaptureBudget time.Duration
	// CoreAboveRSS: a hard stall of a child larger than this is captured
	// by writing a core of it (a short pause), killing it at once and
	// reading the core afterwards (default 64 MiB: about 20,000 parked
	// goroutines, where a live capture already pauses the child for
	// seconds and delays the restart by as much).
	CoreAboveRSS uint64

	// SameCrashLimit ends the supervisor when this many incidents with one
	// fingerprint fall within SameCrashSpan (0: no limit). A new
	// fingerprint keeps the normal policy.
	SameCrashLimit int
	SameCrashSpan  time.Duration // default 10 minutes

	// ArtifactMaxBytes bounds the files kept with records under
	// <StateDir>/artifacts; the oldest incidents' files go first (default
	// 1 GiB; negative: unlimited).
	ArtifactMaxBytes int64

	// Journal retention (see pkg/journal); zero means the journal's defaults.
	JournalMaxBytes int64
	JournalMaxAge   time.Duration

	// Sockets held by the supervisor (sockets.go, docs/sockets.md).
	// Listen: sockets opened before the first start and passed to every
	// child (fds 3 up, LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID), so that
	// connections wait in the kernel's backlog while the child restarts.
	// FDStoreMax bounds the descriptors children keep with the notify
	// protocol's FDSTORE=1 (default DefaultFDStoreMax; negative: no store);
	// they are passed to the next child after the Listen sockets.
	Listen     []Listen
	FDStoreMax int
	// AdoptInherited: the descriptors a service manager passed to this
	// process (systemd socket activation: LISTEN_FDS, LISTEN_PID naming
	// this process) are held as if given in Listen, under their
	// LISTEN_FDNAMES names, and passed to every child. Off, they are kept
	// from the child. Meant for the one supervisor of a process (`run`, a
	// self-supervising pkg/runtime program), not for a Fleet's services.
	AdoptInherited bool
	// Containers and systemd (see init.go, systemd.go, docs/deploy.md).
	// Init: run as a container's init (PID 1, or --init): after a stop
	// the supervisor's status is the child's (128+N for a signal), as
	// tini's is. NoSystemd: do not report to systemd even when
	// NOTIFY_SOCKET is set for this process (one supervisor among several
	// in one process).
	Init      bool
	NoSystemd bool
	// Process attributes (procexec.go), applied by the trampoline between
	// fork and exec; "" leaves each as the supervisor's own. Dir (above)
	// is checked with them.
	User        string // user name or uid; its groups too, unless Group is set (needs root)
	Group       string // group name or gid (needs root)
	Umask       string // octal, e.g. "027"
	EnvFile     string // KEY=VALUE lines (docker's --env-file format), read at every start
	LimitNofile string // RLIMIT_NOFILE: N, SOFT:HARD or infinity
	LimitCore   string // RLIMIT_CORE in bytes (K, M, G, T suffixes) or infinity
	LimitAS     string // RLIMIT_AS in bytes (K, M, G, T suffixes) or infinity
	// Probes (probes.go, docs/probes.md): liveness of a child that links
	// nothing. Probe's failures in a row are a hard stall (source
	// "probe"); a StartupProbe gates readiness and the liveness probe, and
	// its failures in a row are a start-up stall. ProbeDelay: the first
	// probe of each child runs this long after its start.
	Probe        ProbeConfig
	StartupProbe ProbeConfig
	ProbeDelay   time.Duration
}

// Defaults of Config, in one place.
const (
	DefaultBackoffMin    = 100 * time.Millisecond
	DefaultBackoffMax    = 30 * time.Second
	DefaultBackoffReset  = 10 * time.Second
	DefaultRetries       = 5
	DefaultSpan          = 60 * time.Second
	DefaultStopTimeout   = 10 * time.Second
	DefaultLogTail       = 200
	DefaultStopSignal    = syscall.SIGTERM
	DefaultRestart       = RestartOnFailure
	DefaultSameCrashSpan = 10 * time.Minute
	DefaultCaptureBudget = 10 * time.Second
	DefaultGliderBudget  = 30 * time.Second
	DefaultCoreAboveRSS  = 64 << 20
	// DefaultHeartStartup is the start-up deadline of hearts when
	// StartupTimeout is 0; a notify child has none unless one is set.
	DefaultHeartStartup = hearts.DefaultStartup
)

// ErrConfig marks an invalid configuration.
var ErrConfig = errors.New("watchdog: invalid configuration")

// withDefaults returns c with every unset field set to its default.
func (c Config) withDefaults() Config {
	if c.Name == "" && len(c.Command) > 0 {
		c.Name = filepath.Base(c.Command[0])
	}
	if c.Restart == "" {
		c.Restart = DefaultRestart
	}
	if c.BackoffMin == 0 && !c.ZeroBackoff {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.BackoffReset == 0 {
		c.BackoffReset = DefaultBackoffReset
	}
	if c.NotifyAccess == "" {
		c.NotifyAccess = NotifyMain
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.Span == 0 {
		c.Span = DefaultSpan
	}
	if c.StopSignal == 0 {
		c.StopSignal = DefaultStopSignal
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.LogTail == 0 {
		c.LogTail = DefaultLogTail
	}
	if c.Hearts == "" {
		c.Hearts = HeartsAuto
	}
	if c.HeartSlots == 0 {
		c.HeartSlots = DefaultHeartSlots
	}
	if c.HeartTimeout == 0 {
		c.HeartTimeout = DefaultHeartTimeout
	}
	if c.HeartGrace == 0 {
		c.HeartGrace = DefaultHeartGrace
	}
	if c.DumpBudget == 0 {
		c.DumpBudget = DefaultDumpBudget
	}
	if c.ArtifactMaxBytes == 0 {
		c.ArtifactMaxBytes = DefaultArtifactMaxBytes
	}
	if c.GliderBudget == 0 {
		c.GliderBudget = DefaultGliderBudget
	}
	if c.CaptureBudget == 0 {
		c.CaptureBudget = DefaultCaptureBudget
	}
	if c.CoreAboveRSS == 0 {
		c.CoreAboveRSS = DefaultCoreAboveRSS
	}
	if c.SameCrashSpan == 0 {
		c.SameCrashSpan = DefaultSameCrashSpan
	}
	// Sockets held by the supervisor.
	if c.FDStoreMax == 0 {
		c.FDStoreMax = DefaultFDStoreMax
	}
	c = c.probeDefaults() // probes
	return c
}

// validate reports every problem of a defaulted config.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...)))
	}
	if len(c.Command) == 0 || c.Command[0] == "" {
		bad("no command to run")
	}
	if c.StateDir == "" {
		bad("no state directory")
	}
	if _, err := ParsePolicy(string(c.Restart)); err != nil {
		bad("restart policy %q: want always, on-failure or never", c.Restart)
	}
	if c.BackoffMin < 0 || c.BackoffMax < 0 || c.BackoffReset < 0 {
		bad("backoff durations must not be negative")
	}
	if c.BackoffMax < c.BackoffMin {
		bad("backoff-max %v is below backoff-min %v", c.BackoffMax, c.BackoffMin)
	}
	if c.Retries < 1 {
		bad("retries %d: want at least 1", c.Retries)
	}
	if c.Span <= 0 {
		bad("span %v: want a positive duration", c.Span)
	}
	if c.StopTimeout < 0 {
		bad("stop-timeout %v must not be negative", c.StopTimeout)
	}
	if c.StartupTimeout < 0 || c.Watchdog < 0 {
		bad("startup-timeout and watchdog must not be negative")
	}
	if c.Watchdog > 0 && !c.Notify {
		bad("watchdog needs notify (the child must speak the notify protocol)")
	}
	if c.StartupTimeout > 0 && !c.Notify && c.Hearts == HeartsOff {
		bad("startup-timeout needs notify or hearts")
	}
	if _, err := ParseNotifyAccess(string(c.NotifyAccess)); err != nil {
		bad("notify-access %q: want main, exec, all or none", c.NotifyAccess)
	}
	switch c.Hearts {
	case HeartsAuto, HeartsRequire, HeartsOff:
	default:
		bad("hearts %q: want auto, require or off", c.Hearts)
	}
	if c.HeartSlots < 1 || c.HeartSlots > 65536 {
		bad("heart slots %d: want 1 to 65536", c.HeartSlots)
	}
	if c.HeartTimeout < time.Millisecond {
		bad("heart-timeout %v: want at least 1ms", c.HeartTimeout)
	}
	if c.Glider != "" {
		if p, err := exec.LookPath(c.Glider); err != nil {
			bad("glider %q: %v", c.Glider, err)
		} else if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			bad("glider %q: not an executable file", c.Glider)
		}
	}
	if c.DumpBudget < 0 {
		bad("dump-budget must not be negative")
	}
	if c.Watchdog > 0 && c.Watchdog < time.Millisecond {
		bad("watchdog %v: want at least 1ms", c.Watchdog)
	}
	if c.SameCrashLimit < 0 || c.SameCrashSpan < 0 {
		bad("same-crash limit and span must not be negative")
	}
	if c.LogTail < 0 {
		bad("log-tail %d must not be negative", c.LogTail)
	}
	if c.Name != "" && !validName(c.Name) {
		bad("name %q: use letters, digits, '.', '_' and '-' only", c.Name)
	}
	// Sockets held by the supervisor.
	validateListen(c, bad)
	// Process attributes (procexec.go).
	if _, err := resolveProc(&c, ErrConfig); err != nil {
		errs = append(errs, err)
	}
	if c.EnvFile != "" {
		if _, err := ReadEnvFile(c.EnvFile, os.Getenv); err != nil {
			bad("env-file: %v", err)
		}
	}
	errs = append(errs, c.validateProbes()...) // probes
	return errors.Join(errs...)
}

func validName(s string) bool {
	if s == "." || s == ".." || len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// SocketPath is where the control socket of the named service lives.
func SocketPath(stateDir, name string) string {
	return filepath.Join(stateDir, "run", name+".sock")
}

// JournalDir is the incident journal of a state directory.
func JournalDir(stateDir string) string { return incident.JournalDir(stateDir) }

func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("watchdog: state directory: %w", err)
	}
	return nil
}
