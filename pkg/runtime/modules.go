package runtime

import (
	"context"
	"errors"
	"fmt"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/module"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// startModules brings up the <modules> of the configuration file (none
// without one) once the eventer runs, before App.Start, and keeps them in
// rt.Modules. A failure names the module, the stage and file:line, and
// stops the start.
func startModules(ctx context.Context, app App, rt *Runtime) error {
	if rt.Config == nil {
		return nil
	}
	specs, err := module.Specs(rt.Config)
	if err != nil {
		// An unknown image, a duplicate name, a missing executable.
		if !errors.Is(err, watchdog.ErrConfig) {
			err = fmt.Errorf("%w: %w", watchdog.ErrConfig, err)
		}
		return err
	}
	if app.Modules != nil {
		specs = app.Modules(specs)
	}
	set, err := module.Start(ctx, specs, moduleHost(rt))
	if err != nil {
		// A module that cannot be loaded or refuses its <config> is a
		// configuration problem (status 2); one whose init fails is not.
		var se *module.StageError
		if errors.As(err, &se) && (se.Stage == module.StageOnload || se.Stage == module.StageConfig) {
			return fmt.Errorf("%w: %w", watchdog.ErrConfig, err)
		}
		return err
	}
	rt.Modules = set
	return nil
}

// moduleHost is what every module gets from the runtime: the eventer,
// the logs, the configuration, the REST router's Handle, and Report, the
// incident road (a module process's crash or hang becomes an incident of
// the supervisor's, and is logged to "error" too).
func moduleHost(rt *Runtime) module.Host {
	h := module.Host{
		Eventer: rt.Eventer,
		Logs:    rt.Logs,
		Config:  rt.Config,
	}
	if rt.Router != nil {
		h.Handle = rt.Router.Handle
	}
	h.Report = func(s module.Stall) {
		rt.reportOrLog(Stall{Source: s.Source, Name: s.Name, Detail: s.Detail,
			Elapsed: s.Elapsed, Deadline: s.Deadline, Labels: s.Labels, PID: s.PID, Hard: s.Hard})
	}
	return h
}

// mountExtensions serves what the extension layers list: /mtev/hooks.json
// on the router, and the modules in the capabilities document.
func (rt *Runtime) mountExtensions() error {
	if rt.Router == nil {
		return nil
	}
	if err := hook.Mount(rt.Router); err != nil {
		return err
	}
	var mods []rest.Module
	for _, m := range rt.Modules.List() {
		mods = append(mods, rest.Module{Type: m.Type, Name: m.Name})
	}
	rt.Router.SetModules(mods)
	return nil
}
