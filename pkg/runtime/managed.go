package runtime

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// ManagedSection declares libmtev's <managed> section: sidecar
// applications that the app's own supervisor runs beside it, restarts
// when they die, and stops when the app's supervisor ends (see
// docs/up.md, "Managed applications").
var ManagedSection = config.Section{
	Path:     "managed",
	Repeated: true,
	Doc:      "Sidecar applications run by the application's own supervisor beside it: each is restarted when it dies and stopped when the supervisor ends.",
	Element: config.Element{
		Children: []config.Element{{
			Name:     "application",
			Repeated: true,
			Doc:      "One sidecar.",
			Attrs: []config.Attr{
				{Name: "exec", Type: config.TypeString, Required: true, Doc: "the program: a path, or a name looked up in PATH"},
				{Name: "name", Type: config.TypeString, Pattern: `[A-Za-z0-9._-]{1,64}`, Doc: "the service name of its journal records and control socket (default: <app>-<base name of exec>); not in libmtev"},
				{Name: "arg0", Type: config.TypeString, Doc: "argv[0] when it differs from exec: not supported yet, an error"},
				{Name: "user", Type: config.TypeString, Doc: "user to run as"},
				{Name: "group", Type: config.TypeString, Doc: "group to run as"},
				{Name: "dir", Type: config.TypeString, Doc: "working directory"},
				{Name: "stdout", Type: config.TypeString, Doc: "file its standard output is appended to (libmtev: a log facility); default: the supervisor's standard output, each line prefixed with name[pid]"},
				{Name: "stderr", Type: config.TypeString, Doc: "file its standard error is appended to (libmtev: a log facility); default: the supervisor's standard error, prefixed"},
				{Name: "environment", Type: config.TypeBool, Default: "true", Doc: "whether it inherits the supervisor's environment; false is not supported yet, an error"},
			},
			Children: []config.Element{
				{Name: "arg", Type: config.TypeString, Repeated: true, Doc: "one argument, in order"},
				{Name: "env", Type: config.TypeString, Repeated: true, Doc: "KEY=VALUE; a bare KEY passes the supervisor's own value of KEY"},
			},
		}},
	},
}

func init() { config.Register(ManagedSection) }

// managedApp is one <application>, read.
type managedApp struct {
	spec           watchdog.ServiceSpec
	user, group    string
	stdout, stderr string
}

// readManaged reads the <managed> applications of the file at path.
// base is the app's own supervisor configuration: sidecars share its
// state directory.
func readManaged(path, appName string, base watchdog.Config) ([]managedApp, error) {
	c, err := config.Load(path, config.Options{NoWriteBack: true, Sections: []config.Section{ManagedSection}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sections, err := c.SectionAll(ManagedSection)
	if err != nil {
		return nil, err
	}
	var apps []managedApp
	taken := map[string]bool{appName: true}
	for _, sec := range sections {
		for _, a := range sec.Children("application") {
			n := a.Node()
			pos := n.Pos().String()
			exe, _ := n.Attr("exec")
			if arg0, ok := n.Attr("arg0"); ok && arg0 != exe {
				return nil, fmt.Errorf("runtime: managed: %s: arg0 %q: an argv[0] other than exec is not supported", pos, arg0)
			}
			if !a.Bool("@environment") {
				return nil, fmt.Errorf("runtime: managed: %s: environment=\"false\" is not supported: a sidecar inherits the supervisor's environment", pos)
			}
			name, ok := n.Attr("name")
			if !ok {
				name = appName + "-" + filepath.Base(exe)
				for i := 2; taken[name]; i++ {
					name = appName + "-" + filepath.Base(exe) + "-" + strconv.Itoa(i)
				}
			}
			if taken[name] {
				return nil, fmt.Errorf("runtime: managed: %s: duplicate name %q", pos, name)
			}
			taken[name] = true
			cfg := watchdog.Config{
				Name:     name,
				Command:  []string{exe},
				Dir:      a.String("@dir"),
				StateDir: base.StateDir,
				// libmtev restarts a sidecar whatever its exit.
				Restart: watchdog.RestartAlways,
				Hearts:  watchdog.HeartsOff,
			}
			for _, arg := range a.Children("arg") {
				cfg.Command = append(cfg.Command, arg.Node().Text())
			}
			for _, e := range a.Children("env") {
				kv := strings.TrimSpace(e.Node().Text())
				if !strings.Contains(kv, "=") {
					v, ok := os.LookupEnv(kv)
					if !ok {
						continue
					}
					kv += "=" + v
				}
				cfg.Env = append(cfg.Env, kv)
			}
			apps = append(apps, managedApp{
				spec:   watchdog.ServiceSpec{Config: cfg, Pos: pos},
				user:   a.String("@user"),
				group:  a.String("@group"),
				stdout: a.String("@stdout"),
				stderr: a.String("@stderr"),
			})
		}
	}
	return apps, nil
}

// sidecarOutput returns where a sidecar's lines go, and a function that
// closes the files it opened.
func sidecarOutput(name, stdoutPath, stderrPath string) (watchdog.OutputFunc, func(), error) {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	open := func(p string, def *os.File) (*os.File, bool, error) {
		if p == "" {
			return def, true, nil
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, false, fmt.Errorf("runtime: managed %s: %w", name, err)
		}
		files = append(files, f)
		return f, false, nil
	}
	out, outPrefix, err := open(stdoutPath, os.Stdout)
	if err != nil {
		return nil, nil, err
	}
	errF, errPrefix, err := open(stderrPath, os.Stderr)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	var mu sync.Mutex
	var buf []byte
	return func(l watchdog.Line) {
		w, prefix := out, outPrefix
		if l.Stream == watchdog.Stderr {
			w, prefix = errF, errPrefix
		}
		mu.Lock()
		defer mu.Unlock()
		b := buf[:0]
		if prefix {
			b = fmt.Appendf(b, "%s[%d]: ", name, l.PID)
		}
		b = append(b, l.Text...)
		if !l.Partial {
			b = append(b, '\n')
		}
		w.Write(b)
		buf = b[:0]
	}, closeAll, nil
}

// superviseWithSidecars runs the app (cfg) and its sidecars in one
// watchdog.Fleet whose primary is the app: the sidecars start after it,
// are restarted on their own, and are stopped when the app's supervisor
// ends, whose end is the program's. TERM and INT stop everything (the
// sidecars first); HUP, USR1 and USR2 go to the app only.
func superviseWithSidecars(ctx context.Context, cfg watchdog.Config, events func(watchdog.Event), apps []managedApp) error {
	specs := []watchdog.ServiceSpec{{Config: cfg, Options: watchdog.Options{Events: events, Output: passThrough}}}
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for _, a := range apps {
		// The trampoline drops to the sidecar's user and group just
		// before exec; the Fleet checks that they exist (and that the
		// app runs as root) before anything starts, naming a.spec.Pos.
		a.spec.Config.User, a.spec.Config.Group = a.user, a.group
		out, closeOut, err := sidecarOutput(a.spec.Config.Name, a.stdout, a.stderr)
		if err != nil {
			return err
		}
		closers = append(closers, closeOut)
		name := a.spec.Config.Name
		a.spec.Options = watchdog.Options{Output: out, Events: func(e watchdog.Event) {
			fmt.Fprintf(os.Stderr, "%s supervisor: %s\n", name, e)
		}}
		a.spec.Depends = []string{cfg.Name}
		specs = append(specs, a.spec)
	}
	fleet, err := watchdog.NewFleet(specs, watchdog.FleetOptions{
		Name:     cfg.Name,
		StateDir: cfg.StateDir,
		Primary:  cfg.Name,
		Notice: func(service, text string) {
			fmt.Fprintf(os.Stderr, "%s supervisor: %s\n", service, text)
		},
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fwd := make(chan os.Signal, 4)
	signal.Notify(fwd, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(fwd)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case sig := <-fwd:
				fleet.Signal(cfg.Name, sig.(syscall.Signal))
			case <-done:
				return
			}
		}
	}()
	err = fleet.Serve(ctx)
	close(done)
	wg.Wait()
	return err
}
