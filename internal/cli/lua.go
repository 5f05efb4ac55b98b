package cli

import (
	"context"
	"fmt"
	modreg "github.com/mtev-supervise/mtev-supervise/pkg/module"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	glua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	mlua "github.com/mtev-supervise/mtev-supervise/pkg/lua"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime"
)

func init() {
	Register(&Command{
		Name:    "lua",
		Summary: "run a Lua script inside the runtime (libmtev's luamtev)",
		Run:     luaCmd,
	})
}

const luaSynopsis = `lua [-c FILE] [-e FUNC] [-n N] [-L PATH] [-l FACILITY] [-d] [-i] SCRIPT [ARGS]
       mtev-supervise lua -T SCRIPT

Runs SCRIPT (a Lua 5.1 module, module(..., package.seeall), or a file
defining globals) inside the runtime: event loops, configuration and
logging. FUNC (default main) is called in a coroutine on each of N loops;
the command exits when every call has returned (status 0, or 1 after a Lua
error), or with n at os.exit(n). With -i, or lua_web routes in the
configuration, it runs until the console's shutdown, end of input, a
signal or os.exit. The script sees arg[1] = SCRIPT and arg[2..] = ARGS.`

func luaCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "lua", luaSynopsis)
	cfgFile := fs.String("c", "", "configuration `file` (see -T for one to start from)")
	entry := fs.String("e", "", "entry `function` (default main)")
	n := fs.Int("n", 1, "loop concurrency: the entry function runs on each of `N` loops")
	path := fs.String("L", "", "package.path: `PATH` replaces it, +PATH appends to it")
	tmpl := fs.Bool("T", false, "print the configuration the script runs with and exit")
	debug := fs.Bool("d", false, "turn on debugging: enable the debug facility")
	var enable []string
	fs.Func("l", "enable the log `facility` and write it to stderr (repeatable)", func(v string) error {
		enable = append(enable, v)
		return nil
	})
	interactive := fs.Bool("i", false, "serve the console on standard input and output; the command runs until shutdown or end of input (under a supervisor, also on the service's console socket, until shutdown)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return usageError("no script")
	}
	if *n < 1 {
		return usageError("-n %d: want at least 1", *n)
	}
	script := fs.Arg(0)
	dir, module := filepath.Dir(script), strings.TrimSuffix(filepath.Base(script), ".lua")
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	fn := *entry
	if fn == "" {
		fn = "main"
	}
	directory := filepath.Join(dir, "?.lua") + ";{package.path}"
	switch {
	case strings.HasPrefix(*path, "+"):
		directory += ";" + (*path)[1:]
	case *path != "":
		directory = filepath.Join(dir, "?.lua") + ";" + *path
	}
	if *tmpl {
		_, err := io.WriteString(env.Stdout, luaTemplate(*n, directory, module, fn))
		return err
	}
	if st, err := os.Stat(script); err != nil || st.IsDir() {
		return usageError("bad file: %s", script)
	}
	hash := map[string]string{
		"directory":          directory,
		"lua_module":         module,
		"lua_function":       fn,
		"concurrent":         fmt.Sprint(*n > 1),
		"tragedy_terminates": "false",
	}
	// Without a supervisor's heart table in the environment the script
	// runs in the foreground, as luamtev does without -m.
	os.Setenv(runtime.ForegroundEnv, "1")

	var (
		mu       sync.Mutex
		code     = -1
		finished = make(chan struct{})
		once     sync.Once
	)
	exited := make(chan struct{})
	var exitOnce sync.Once
	end := func(c int) {
		mu.Lock()
		if code < 0 {
			code = c
		}
		mu.Unlock()
		once.Do(func() { close(finished) })
	}
	exit := func(c int) {
		end(c)
		exitOnce.Do(func() { close(exited) })
	}
	var (
		g   *mlua.General
		web []*mlua.Web
		con *stdioConsole
	)
	app := runtime.App{
		Name:       "lua",
		Eventer:    eventer.Options{Concurrency: *n},
		ConfigFile: *cfgFile,
		// The command runs the script's lua_general and the lua_web
		// routes itself (it owns their life and the exit status).
		Modules: func(specs []modreg.Spec) []modreg.Spec {
			var keep []modreg.Spec
			for _, s := range specs {
				if s.Image != "lua_general" && s.Image != "lua_web" {
					keep = append(keep, s)
				}
			}
			return keep
		},
		Start: func(ctx context.Context, rt *runtime.Runtime) error {
			if *debug {
				if err := rt.Logs.SetEnabled("debug", true); err != nil {
					return fmt.Errorf("lua: -d: %w", err)
				}
			}
			for _, name := range enable {
				// Enabled and written to stderr even when its parent
				// (debug, say) stays disabled.
				rt.Logs.Facility(name)
				if err := rt.Logs.SetEnabled(name, true); err != nil {
					return fmt.Errorf("lua: -l %s: %w", name, err)
				}
				if name != "stderr" {
					if err := rt.Logs.Connect(name, "stderr"); err != nil {
						return fmt.Errorf("lua: -l %s: %w", name, err)
					}
				}
			}
			h := hash
			where := ""
			if rt.Config != nil {
				nodes, err := rt.Config.FindAll("//modules/generic[@image='lua_general']/config")
				if err != nil {
					return err
				}
				if len(nodes) > 0 {
					where = nodes[0].Pos().String()
					if h, err = nodes[0].Hash(); err != nil {
						return err
					}
					if *entry != "" {
						h["lua_function"] = *entry
					}
				}
			}
			g = &mlua.General{Stdout: env.Stdout, Args: append([]string{"mtev-supervise lua"}, fs.Args()...), Exit: exit}
			if err := g.Config(h); err != nil {
				if where != "" {
					return fmt.Errorf("%s: %w", where, err)
				}
				return err
			}
			runs := 1
			if h["concurrent"] == "true" || h["concurrent"] == "on" {
				runs = rt.Eventer.Default().Len()
			}
			var left = runs
			var failed bool
			g.Done = func(_ int, _ []glua.LValue, err error) {
				mu.Lock()
				left--
				if err != nil {
					failed = true
				}
				last := left == 0
				mu.Unlock()
				if last {
					if failed {
						end(1)
					} else {
						end(0)
					}
				}
			}
			if err := g.Init(ctx, &mlua.Host{Name: "lua_general", Eventer: rt.Eventer, Logs: rt.Logs, Config: rt.Config}); err != nil {
				return err
			}
			var err error
			if web, err = startLuaWeb(ctx, rt); err != nil {
				return err
			}
			if *interactive {
				ended := func() { exit(0) }
				if rt.Supervised {
					// The supervisor gives no input: the console stays
					// up on its unix socket (mtev-supervise console).
					ended = func() {}
				}
				if con, err = serveStdioConsole(rt, env, ended); err != nil {
					return err
				}
			}
			return nil
		},
		Run: func(ctx context.Context, rt *runtime.Runtime) error {
			done := finished
			if *interactive || len(web) > 0 {
				// The console or the routes are the program's life:
				// it runs until shutdown, end of input or os.exit.
				done = exited
			}
			select {
			case <-ctx.Done():
			case <-done:
			}
			for _, w := range web {
				w.Close()
			}
			if g != nil {
				g.Close()
			}
			return nil
		},
	}
	if *interactive {
		// Under a supervisor the console is also on the service's unix
		// socket in the state directory, as for any service.
		sock := "-"
		if os.Getenv(runtime.SupervisorPIDEnv) != "" {
			sock = ""
		}
		app.Console = &runtime.ConsoleOptions{Socket: sock, Version: "mtev-supervise lua"}
	}
	status := runtime.Status(app.Name, runtime.Run(ctx, app))
	if con != nil {
		con.wait()
	}
	mu.Lock()
	defer mu.Unlock()
	switch {
	case code > 0:
		return &StatusError{Code: code}
	case code < 0 && status != 0:
		return &StatusError{Code: status}
	}
	return nil
}

// luaTemplate is the configuration the lua command runs a script with.
func luaTemplate(n int, directory, module, fn string) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="utf-8" standalone="yes"?>
<cli>
  <eventer>
    <config>
      <concurrency>%d</concurrency>
    </config>
  </eventer>
  <modules>
    <generic image="lua_general" name="lua_general">
      <config>
        <directory>%s</directory>
        <lua_module>%s</lua_module>
        <lua_function>%s</lua_function>
        <concurrent>%v</concurrent>
        <tragedy_terminates>false</tragedy_terminates>
      </config>
    </generic>
  </modules>
  <logs>
    <log name="debug/lua" disabled="true"/>
  </logs>
</cli>
`, n, xmlEscape(directory), xmlEscape(module), xmlEscape(fn), n > 1)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// startLuaWeb starts the lua_web modules of the configuration, mounted on
// the runtime's router.
func startLuaWeb(ctx context.Context, rt *runtime.Runtime) ([]*mlua.Web, error) {
	if rt.Config == nil {
		return nil, nil
	}
	nodes, err := rt.Config.FindAll("//modules/generic[@image='lua_web']")
	if err != nil {
		return nil, err
	}
	var webs []*mlua.Web
	fail := func(err error) ([]*mlua.Web, error) {
		for _, w := range webs {
			w.Close()
		}
		return nil, err
	}
	for _, n := range nodes {
		hash := map[string]string{}
		if c, ok, err := n.Find("config"); err != nil {
			return fail(err)
		} else if ok {
			if hash, err = c.Hash(); err != nil {
				return fail(err)
			}
		}
		name, _ := n.Attr("name")
		w := &mlua.Web{}
		if err := w.Config(hash); err != nil {
			return fail(fmt.Errorf("%s: %w", n.Pos(), err))
		}
		h := &mlua.Host{Name: name, Eventer: rt.Eventer, Logs: rt.Logs, Config: rt.Config}
		if rt.Router != nil {
			h.Handle = rt.Router.Handle
		}
		if err := w.Init(ctx, h); err != nil {
			return fail(fmt.Errorf("%s: %w", n.Pos(), err))
		}
		webs = append(webs, w)
		if err := w.PostInit(ctx, h); err != nil {
			return fail(fmt.Errorf("%s: %w", n.Pos(), err))
		}
	}
	return webs, nil
}

// stdioConsole is the console served on standard input and output (-i):
// one session over a pipe, whose other end copies stdin in and the
// session's output out.
type stdioConsole struct {
	out chan struct{} // closed once the session's output is all written
}

func serveStdioConsole(rt *runtime.Runtime, env *Env, ended func()) (*stdioConsole, error) {
	srvEnd, cliEnd, err := socketPair()
	if err != nil {
		return nil, fmt.Errorf("lua: console on stdio: %w", err)
	}
	c := &stdioConsole{out: make(chan struct{})}
	go func() {
		// The session's output, until the session ends: at shutdown, or
		// after the last line of input has been answered.
		defer close(c.out)
		_, _ = io.Copy(env.Stdout, cliEnd)
		cliEnd.Close()
		ended()
	}()
	go func() {
		_, _ = io.Copy(cliEnd, env.Stdin)
		_ = cliEnd.CloseWrite()
	}()
	ln := &oneConnListener{conn: srvEnd, closed: make(chan struct{})}
	go func() {
		_ = rt.Console.Serve(ln)
	}()
	return c, nil
}

// socketPair returns the two ends of a unix stream socket pair: unlike
// net.Pipe, a side can close its writing half alone.
func socketPair() (*net.UnixConn, *net.UnixConn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	var conns [2]*net.UnixConn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "console")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			if i == 1 {
				conns[0].Close()
			} else {
				unix.Close(fds[1])
			}
			return nil, nil, err
		}
		conns[i] = c.(*net.UnixConn)
	}
	return conns[0], conns[1], nil
}

// wait waits for the session's output to be written (the runtime has
// shut the console down, closing the session).
func (c *stdioConsole) wait() { <-c.out }

// oneConnListener hands out one connection, then waits to be closed.
type oneConnListener struct {
	mu     sync.Mutex
	conn   net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return stdioAddr{} }

type stdioAddr struct{}

func (stdioAddr) Network() string { return "stdio" }
func (stdioAddr) String() string  { return "stdio" }
