package runtime

import (
	"context"
	"fmt"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/listener"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

// DrainTimeout bounds the graceful stop of the listeners on SIGTERM and
// of a removed or changed listener on reload.
const DrainTimeout = 10 * time.Second

// reportHTTPStall hands a handler past its deadline to the supervisor.
// Until the runtime's stall road is connected here it logs the stall to
// the "error" facility; with it, the body becomes
//
//	rt.ReportStall(Stall{Source: s.Source, Name: s.Name, Detail: s.Detail,
//		Elapsed: s.Elapsed, Deadline: s.Deadline, Labels: s.Labels, PID: s.PID, Hard: s.Hard})
var reportHTTPStall = func(rt *Runtime, s rest.Stall) {
	rt.Logs.Facility("error").Log().
		Str("source", s.Source).Str("route", s.Name).Str("detail", s.Detail).
		Dur("elapsed", s.Elapsed).Dur("deadline", s.Deadline).Bool("hard", s.Hard).
		Interface("labels", s.Labels).
		Msg("http handler passed its deadline")
}

// initHTTP makes the router from <rest> (rt.Router) before App.Start, so
// that the app and the subsystems register their routes on it.
func (rt *Runtime) initHTTP() error {
	var n config.Node
	if rt.Config != nil {
		v, err := rt.Config.Section(rest.Section)
		if err != nil {
			return err
		}
		n = v.Node()
	}
	set, err := rest.ParseSettings(n)
	if err != nil {
		return err
	}
	rt.Router = rest.New(rest.Options{
		Eventer:     rt.Eventer,
		Deadline:    set.Deadline,
		MaxHung:     set.MaxHung,
		MaxBody:     set.MaxBody,
		MinCompress: set.MinCompress,
		Logs:        rt.Logs,
		OnStall:     func(s rest.Stall) { reportHTTPStall(rt, s) },
		Version:     "mtev-supervise",
	})
	rt.Router.SetACL(set.ACL)
	if err := rt.Router.MountCapabilities(); err != nil {
		return err
	}
	rt.Listeners = listener.NewSet(listener.Options{
		Router:       rt.Router,
		DrainTimeout: DrainTimeout,
		OnError: func(spec *listener.Spec, err error) {
			rt.Logs.Facility("error").Log().Str("listener", spec.Key()).Err(err).Msg("listener failed")
		},
	})
	return nil
}

// startListeners opens <listeners> after App.Start: all or none.
func (rt *Runtime) startListeners() error {
	if rt.Config == nil || rt.Listeners == nil {
		return nil
	}
	specs, err := listener.Parse(rt.Config)
	if err != nil {
		return err
	}
	return rt.Listeners.Start(specs)
}

// stopListeners drains the listeners (SIGTERM): stop accepting, finish
// the requests in flight for up to DrainTimeout, close.
func (rt *Runtime) stopListeners() {
	if rt.Listeners == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	_ = rt.Listeners.Shutdown(ctx)
}

// reloadHTTP applies a reloaded configuration: the ACLs, then the
// listeners (certificates replaced in place, others added, removed or
// restarted). A bad <rest> or <listeners> is refused with file:line and
// the running ones stay.
func (rt *Runtime) reloadHTTP() error {
	if rt.Router == nil || rt.Config == nil {
		return nil
	}
	v, err := rt.Config.Section(rest.Section)
	if err != nil {
		return err
	}
	set, err := rest.ParseSettings(v.Node())
	if err != nil {
		return err
	}
	specs, err := listener.Parse(rt.Config)
	if err != nil {
		return err
	}
	if err := rt.Listeners.Reload(specs); err != nil {
		return fmt.Errorf("runtime: reload listeners: %w", err)
	}
	rt.Router.SetACL(set.ACL)
	return nil
}
