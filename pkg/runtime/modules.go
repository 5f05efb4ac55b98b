package runtime

import (
	"context"

	"github.com/mtev-supervise/mtev-supervise/pkg/module"
)

// startModules brings up the <modules> of the configuration file (none
// without one) once the eventer runs, before App.Start, and keeps them in
// rt.Modules. A failure names the module, the stage and file:line, and
// stops the start.
func startModules(ctx context.Context, rt *Runtime) error {
	if rt.Config == nil {
		return nil
	}
	set, err := module.Load(ctx, rt.Config, moduleHost(rt))
	if err != nil {
		return err
	}
	rt.Modules = set
	return nil
}

// moduleHost is what every module gets from the runtime: the eventer,
// the logs, the configuration and the REST router's Handle. Report (the
// incident road) is wired in reportModuleStall; without a supervisor a
// module process's crash or hang is logged to error/module/NAME.
func moduleHost(rt *Runtime) module.Host {
	h := module.Host{
		Eventer: rt.Eventer,
		Logs:    rt.Logs,
		Config:  rt.Config,
	}
	if rt.Router != nil {
		h.Handle = rt.Router.Handle
	}
	return h
}
