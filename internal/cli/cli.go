// Package cli implements the mtev-supervise command line: it parses flags,
// calls into pkg/ and maps errors to exit statuses. Each sub-command lives in
// its own file and registers itself with Register from an init function.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Exit statuses of mtev-supervise itself. Statuses of the supervised child
// are never passed through as the supervisor's own, except where documented.
const (
	ExitOK    = 0
	ExitError = 1 // an operation failed
	ExitUsage = 2 // bad flags, arguments or configuration
)

// Env is what a command may touch of the outside world.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// LookupEnv tells a variable set empty from one unset (require_env,
	// {{ENV:...}}); nil: a variable is set when Getenv gives it a value.
	LookupEnv func(string) (string, bool)
	// Args0 is the path this program was run as.
	Args0 string
	// Now is the clock (traces --since counts back from it); nil is
	// time.Now.
	Now func() time.Time
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Command is one sub-command.
type Command struct {
	Name    string // "run", "traces", ...
	Summary string // one line for the top-level help
	Hidden  bool   // left out of the top-level help
	// Run executes the command. args excludes the command name. A
	// *StatusError sets the exit status; ErrUsage (wrapped) exits with
	// ExitUsage; any other error exits with ExitError.
	Run func(ctx context.Context, env *Env, args []string) error
}

// ErrUsage marks an error in the command line or configuration: the exit
// status is ExitUsage.
var ErrUsage = errors.New("usage")

// StatusError ends the program with Code, printing Err if it is not nil.
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *StatusError) Unwrap() error { return e.Err }

// usageError wraps a message so that errors.Is(err, ErrUsage) holds.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

var commands = map[string]*Command{}

// Register adds a command. It panics on a duplicate name: that is a
// programming error caught by any test.
func Register(c *Command) {
	if _, dup := commands[c.Name]; dup {
		panic("cli: duplicate command " + c.Name)
	}
	commands[c.Name] = c
}

// earlySignals holds HUP, USR1 and USR2 from the moment this package is
// initialized: `run` (and `up`) forwards them to the child, and until it is ready to,
// a HUP (whose default action is to end the process) must not kill the
// supervisor while it reads its configuration. Commands other than `run`
// give the signals their default action back (see Main).
var earlySignals = make(chan os.Signal, 8)

func init() {
	signal.Notify(earlySignals, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
}

// Main runs the command line and returns the exit status.
func Main(args []string) int {
	if len(args) == 0 || (args[0] != "run" && args[0] != "up") {
		signal.Stop(earlySignals)
	}
	env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, LookupEnv: os.LookupEnv, Args0: os.Args[0]}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, env, args)
}

// Run runs one command line (without the program name) and returns the exit
// status. Errors are printed to env.Stderr.
func Run(ctx context.Context, env *Env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		topUsage(env.Stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "mtev-supervise: unknown command %q (see mtev-supervise --help)\n", args[0])
		return ExitUsage
	}
	err := c.Run(ctx, env, args[1:])
	return exitStatus(env.Stderr, c.Name, err)
}

func exitStatus(stderr io.Writer, name string, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	var se *StatusError
	if errors.As(err, &se) {
		if se.Err != nil {
			fmt.Fprintf(stderr, "mtev-supervise %s: %v\n", name, se.Err)
		}
		return se.Code
	}
	fmt.Fprintf(stderr, "mtev-supervise %s: %v\n", name, err)
	if errors.Is(err, ErrUsage) {
		return ExitUsage
	}
	return ExitError
}

func topUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: mtev-supervise <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.Hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].Summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'mtev-supervise <command> --help' for a command's flags.")
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints its usage to env.Stderr with the given synopsis.
func newFlagSet(env *Env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: mtev-supervise %s\n", synopsis)
		var has bool
		fs.VisitAll(func(*flag.Flag) { has = true })
		if has {
			fmt.Fprintln(env.Stderr, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args with fs, turning flag errors into usage errors.
// --help returns flag.ErrHelp, which exits 0 after the usage is printed.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseExplained(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %s", ErrUsage, strings.TrimSpace(err.Error()))
	}
	return nil
}
