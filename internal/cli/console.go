package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/mtev-supervise/mtev-supervise/pkg/console"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

func init() {
	Register(&Command{Name: "console", Summary: "open a running service's console, or run console commands", Run: consoleCmd})
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, "; ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func consoleCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "console", "console [--name NAME] [--state-dir DIR] [--socket PATH] [-c COMMAND]...")
	name := fs.String("name", "", "service name (default: the only service running in the state directory)")
	dirFlag := fs.String("state-dir", "", "state directory (default: $MTEV_STATE_DIR, else $XDG_STATE_HOME/mtev-supervise)")
	socket := fs.String("socket", "", "console socket path (default: <state dir>/run/<name>.console)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the connection")
	var cmds multiFlag
	fs.Var(&cmds, "c", "run this command and exit (repeatable; commands run in order, the first failure stops)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q (quote a command given with -c)", fs.Arg(0))
	}
	path := *socket
	if path == "" {
		dir, err := stateDir(env, *dirFlag)
		if err != nil {
			return err
		}
		n := *name
		if n == "" {
			names, err := watchdog.Services(dir)
			if err != nil {
				return err
			}
			switch len(names) {
			case 0:
				return fmt.Errorf("%w in %s", watchdog.ErrNotRunning, dir)
			case 1:
				n = names[0]
			default:
				return usageError("several services run in %s (%s): name one with --name", dir, strings.Join(names, ", "))
			}
		}
		path = console.SocketPath(dir, n)
	}
	dctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	in, isFile := env.Stdin.(*os.File)
	if len(cmds) == 0 && isFile && term.IsTerminal(int(in.Fd())) {
		var d net.Dialer
		conn, err := d.DialContext(dctx, "unix", path)
		if err != nil {
			return fmt.Errorf("console: %w (does the service serve a console?)", err)
		}
		defer conn.Close()
		old, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return fmt.Errorf("console: %w", err)
		}
		defer term.Restore(int(in.Fd()), old)
		out := env.Stdout
		size := func() (int, int, bool) {
			w, h, err := term.GetSize(int(in.Fd()))
			return w, h, err == nil
		}
		return console.Attach(conn, in, out, size)
	}
	c, err := console.Dial(dctx, "unix", path)
	if err != nil {
		return fmt.Errorf("%w (does the service serve a console?)", err)
	}
	defer c.Close()
	if len(cmds) == 0 {
		sc := bufio.NewScanner(env.Stdin)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			cmds = append(cmds, sc.Text())
		}
	}
	for _, cmd := range cmds {
		err := c.Run(cmd, env.Stdout)
		var ce *console.CommandError
		switch {
		case err == nil:
		case errors.Is(err, console.ErrSessionClosed), errors.Is(err, io.ErrUnexpectedEOF) && endsSession(cmd):
			// exit, shutdown and restart end the session.
			return nil
		case errors.As(err, &ce):
			return fmt.Errorf("%s: %s", cmd, ce.Msg)
		default:
			return err
		}
	}
	return nil
}

// endsSession says whether a command may take the connection down with the
// process before its answer arrives.
func endsSession(cmd string) bool {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return false
	}
	w := strings.ToLower(f[0])
	return len(w) >= 2 && (strings.HasPrefix("shutdown", w) || strings.HasPrefix("restart", w) || strings.HasPrefix("crash", w))
}
