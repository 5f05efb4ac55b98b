package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	glua "github.com/yuin/gopher-lua"

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

const luaSynopsis = `lua [-c FILE] [-e FUNC] [-n N] [-L PATH] SCRIPT [ARGS]
       mtev-supervise lua -T SCRIPT

Runs SCRIPT (a Lua 5.1 module, module(..., package.seeall), or a file
defining globals) inside the runtime: event loops, configuration and
logging. FUNC (default main) is called in a coroutine on each of N loops;
the command exits when every call has returned (status 0, or 1 after a Lua
error), or with n at os.exit(n). The script sees arg[1] = SCRIPT and
arg[2..] = ARGS.`

func luaCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "lua", luaSynopsis)
	cfgFile := fs.String("c", "", "configuration `file` (see -T for one to start from)")
	entry := fs.String("e", "", "entry `function` (default main)")
	n := fs.Int("n", 1, "loop concurrency: the entry function runs on each of `N` loops")
	path := fs.String("L", "", "package.path: `PATH` replaces it, +PATH appends to it")
	tmpl := fs.Bool("T", false, "print the configuration the script runs with and exit")
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
	end := func(c int) {
		mu.Lock()
		if code < 0 {
			code = c
		}
		mu.Unlock()
		once.Do(func() { close(finished) })
	}
	var g *mlua.General
	app := runtime.App{
		Name:       "lua",
		Eventer:    eventer.Options{Concurrency: *n},
		ConfigFile: *cfgFile,
		Start: func(ctx context.Context, rt *runtime.Runtime) error {
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
			g = &mlua.General{Stdout: env.Stdout, Args: append([]string{"mtev-supervise lua"}, fs.Args()...), Exit: end}
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
			return g.Init(ctx, &mlua.Host{Name: "lua_general", Eventer: rt.Eventer, Logs: rt.Logs, Config: rt.Config})
		},
		Run: func(ctx context.Context, rt *runtime.Runtime) error {
			select {
			case <-ctx.Done():
			case <-finished:
			}
			if g != nil {
				g.Close()
			}
			return nil
		},
	}
	status := runtime.Run(app)
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
