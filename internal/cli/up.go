package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

const upSynopsis = "up [--name NAME] [--state-dir DIR] [--output prefix|plain|json] [--quiet] FILE"

func init() {
	Register(&Command{
		Name:    "up",
		Summary: "run every <service> of a file, in dependency order, in one supervisor",
		Run:     upCmd,
	})
	Register(&Command{Name: "start", Summary: "start a service of a running `up` (after stop)", Run: controlCmd("start")})
	Register(&Command{Name: "reload", Summary: "make a running `up` re-read its file (as HUP does), reporting a bad file", Run: reloadCmd})
	config.Register(serviceSection)
}

// The <service> elements of a file given to `up`: each has the attributes
// and children of <run> (one attribute per flag of `run`), a required
// name, and <depends on="NAME"/> children.
//
//	<mtev-supervise>
//	  <service name="db" notify="true"><command>db</command></service>
//	  <service name="web"><depends on="db"/><command>web</command></service>
//	</mtev-supervise>
var serviceSection = func() config.Section {
	var f runFlags
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	f.bind(fs)
	s := sectionOf(fs)
	s.Path, s.Name, s.Repeated = "service", "service", true
	s.Doc = "One service of `mtev-supervise up`: the settings of `mtev-supervise run`, one attribute per flag, and the services it depends on."
	s.Element.Doc = s.Doc
	for i := range s.Attrs {
		if s.Attrs[i].Name == "name" {
			s.Attrs[i].Required = true
			s.Attrs[i].Doc = "the service's name (letters, digits, '.', '_', '-'): its journal records, control and output carry it"
		}
		if s.Attrs[i].Name == "output" {
			s.Attrs[i].Default = "prefix"
		}
	}
	s.Children = append(s.Children, config.Element{
		Name: "depends", Repeated: true,
		Doc:   "start this service once the named one is ready (READY=1 with notify, a heart beat with hearts=require, else started), and stop it before",
		Attrs: []config.Attr{{Name: "on", Type: config.TypeString, Required: true, Doc: "the name of another <service>"}},
	})
	return s
}()

// unsupportedInService are flags of `run` that a <service> refuses.
var unsupportedInService = []string{"log-file", "log-rotate-bytes", "log-retain", "metrics-listen"}

type upFlags struct {
	name     string
	stateDir string
	output   string
	quiet    bool
}

func upCmd(ctx context.Context, env *Env, args []string) error {
	var u upFlags
	fs := newFlagSet(env, "up", upSynopsis)
	fs.StringVar(&u.name, "name", "", "name of this set of services: its control socket (default: the file's base name without .xml)")
	fs.StringVar(&u.stateDir, "state-dir", "", "journal and control socket directory of every service that does not set its own (default: $MTEV_STATE_DIR, else $XDG_STATE_HOME/mtev-supervise)")
	fs.StringVar(&u.output, "output", "prefix", "how child output is written, for services that do not set it: prefix (name[pid]: line), plain or json")
	fs.BoolVar(&u.quiet, "quiet", false, "do not print supervisor events")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("want one FILE: mtev-supervise %s", upSynopsis)
	}
	path := fs.Arg(0)
	dir, err := stateDir(env, u.stateDir)
	if err != nil {
		return err
	}
	u.stateDir = dir
	if u.name == "" {
		u.name = strings.TrimSuffix(filepath.Base(path), ".xml")
	}
	if !validServiceName(u.name) {
		return usageError("--name %q: use letters, digits, '.', '_' and '-' only", u.name)
	}
	logs := log.New(log.WithStderr(env.Stderr))
	defer logs.Close()
	specs, err := loadUp(env, path, &u, logs, true)
	if err != nil {
		return err
	}
	var notice sync.Mutex
	say := func(service, text string) {
		if u.quiet {
			return
		}
		notice.Lock()
		defer notice.Unlock()
		fmt.Fprintf(env.Stderr, "mtev-supervise[%s]: %s\n", service, text)
	}
	var fleet *watchdog.Fleet
	reload := func() error {
		specs, err := loadUp(env, path, &u, logs, false)
		if err != nil {
			return fmt.Errorf("up: reload: %s", strings.TrimPrefix(err.Error(), ErrUsage.Error()+": "))
		}
		return fleet.Update(specs)
	}
	fleet, err = watchdog.NewFleet(specs, watchdog.FleetOptions{
		Name:     u.name,
		StateDir: u.stateDir,
		Notice:   say,
		Reload:   reload,
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case sig := <-earlySignals:
				switch sig {
				case syscall.SIGHUP:
					if err := reload(); err != nil {
						say(u.name, "reload refused, every service keeps running: "+err.Error())
					} else {
						say(u.name, "configuration reloaded")
					}
				case syscall.SIGUSR1:
					if err := logs.Reopen(); err != nil {
						say(u.name, "reopen logs: "+err.Error())
					}
					fleet.Signal("", syscall.SIGUSR1)
				default:
					fleet.Signal("", sig.(syscall.Signal))
				}
			case <-done:
				return
			}
		}
	}()
	err = fleet.Serve(ctx)
	close(done)
	wg.Wait()
	return runStatus(err)
}

func validServiceName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 64 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) < 0
}

// loadUp reads the services of path. logs is configured from the file's
// <logs> section when first is set (at start; a reload leaves it).
func loadUp(env *Env, path string, u *upFlags, logs *log.Graph, first bool) ([]watchdog.ServiceSpec, error) {
	c, err := config.Load(path, config.Options{NoWriteBack: true, Sections: []config.Section{serviceSection, log.ConfigSection}})
	if err != nil {
		return nil, usageError("%v", err)
	}
	defer c.Close()
	if first {
		if err := logs.ConfigureFrom(c); err != nil {
			return nil, usageError("%v", err)
		}
	}
	all, err := c.SectionAll(serviceSection)
	if err != nil {
		return nil, usageError("%v", err)
	}
	if len(all) == 0 {
		return nil, usageError("%s: no <service> element", path)
	}
	var specs []watchdog.ServiceSpec
	var errs []string
	for _, v := range all {
		spec, err := serviceSpec(env, v, u, logs)
		if err != nil {
			errs = append(errs, strings.TrimPrefix(err.Error(), ErrUsage.Error()+": "))
			continue
		}
		specs = append(specs, spec)
	}
	if len(errs) > 0 {
		return nil, usageError("%s", strings.Join(errs, "\n"))
	}
	return specs, nil
}

// serviceSpec turns one <service> into a watchdog.ServiceSpec, through
// the flags of `run`: a <service> means what the same <run> means.
func serviceSpec(env *Env, v config.Values, u *upFlags, logs *log.Graph) (watchdog.ServiceSpec, error) {
	n := v.Node()
	pos := n.Pos().String()
	var f runFlags
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.bind(fs)
	command, extraEnv, err := applyNode(n, fs)
	if err != nil {
		return watchdog.ServiceSpec{}, err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for _, name := range unsupportedInService {
		if set[name] {
			return watchdog.ServiceSpec{}, fmt.Errorf("%s: %s: not supported in <service> (use the file's <logs> section)", pos, name)
		}
	}
	if !set["state-dir"] {
		f.stateDir = u.stateDir
	}
	if !set["output"] {
		f.output = u.output
	}
	f.quiet = f.quiet || u.quiet
	name := f.cfg.Name
	if len(command) == 0 {
		return watchdog.ServiceSpec{}, fmt.Errorf("%s: service %q has no <command>", pos, name)
	}
	cfg, err := f.resolve(env, command)
	if err != nil {
		return watchdog.ServiceSpec{}, fmt.Errorf("%s: service %q: %v", pos, name, strings.TrimPrefix(err.Error(), ErrUsage.Error()+": "))
	}
	cfg.Env = append(cfg.Env, extraEnv...)
	var deps []string
	for _, d := range v.Children("depends") {
		on, _ := d.Node().Attr("on")
		deps = append(deps, on)
	}
	w := newOutputWriter(env, f.output)
	w.quiet = f.quiet
	w.service = name
	w.facilities = map[watchdog.Stream]*log.Facility{
		watchdog.Stdout: logs.Facility("child/stdout"),
		watchdog.Stderr: logs.Facility("child/stderr"),
	}
	w.supervisor = logs.Facility("supervisor")
	return watchdog.ServiceSpec{
		Config:  cfg,
		Options: watchdog.Options{Output: w.line, Events: w.event},
		Depends: deps,
		Pos:     pos,
		Key:     f.output + "," + strconv.FormatBool(f.quiet),
	}, nil
}

// errNoFleet: the service named is not one of a running `up`.
var errNoFleet = errors.New("not a service of a running `mtev-supervise up`")

// reloadCmd asks a running `up` to re-read its file and reports the
// outcome: a bad file's errors (file:line), or the services after it.
func reloadCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "reload", "reload [--name UP] [--state-dir DIR] [--json]")
	name := fs.String("name", "", "the `up` to reload (default: the only one running in the state directory)")
	dirFlag := fs.String("state-dir", "", "state directory (default: $MTEV_STATE_DIR, else $XDG_STATE_HOME/mtev-supervise)")
	asJSON := fs.Bool("json", false, "machine-readable output")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait for the reload (services it stops and starts included)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	dir, err := stateDir(env, *dirFlag)
	if err != nil {
		return err
	}
	if *name == "" {
		fleets := liveFleets(ctx, dir, 5*time.Second)
		switch len(fleets) {
		case 0:
			return fmt.Errorf("%w: no `up` in %s", watchdog.ErrNotRunning, dir)
		case 1:
			*name = fleets[0].Name
		default:
			return usageError("several `up` run in %s: name one with --name", dir)
		}
	}
	c, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	after, err := watchdog.FleetControl(c, dir, *name, "reload", "")
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(map[string]any{"ok": true, "op": "reload", "services": after})
	}
	fmt.Fprintf(env.Stdout, "%s: reloaded\n", *name)
	writeFleet(env.Stdout, "", after)
	return nil
}
