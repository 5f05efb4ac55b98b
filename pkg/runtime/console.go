package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/console"
	"github.com/mtev-supervise/mtev-supervise/pkg/listener"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime/builtin"
	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// ConsoleOptions configure the console a service serves (App.Console).
// Besides the unix socket, the console is served on every <listener
// type="mtev_console"> (TCP or unix; <config>: acl, line_protocol,
// history_file) and as a
// websocket at /mtev/console on the HTTP listeners.
type ConsoleOptions struct {
	// Socket is the unix socket; default console.SocketPath(state dir,
	// service name). "-" serves none.
	Socket string
	// Version is shown by "show version".
	Version string
}

// serviceName is the name the supervisor knows this process by
// (MTEV_SERVICE), else app.Name.
func serviceName(app App) string {
	if n := os.Getenv("MTEV_SERVICE"); n != "" {
		return n
	}
	return app.Name
}

// startConsole serves the console as app.Console and the <console> section
// say; the returned func stops it. stop cancels the service (shutdown when
// unsupervised).
func startConsole(app App, rt *Runtime, stop context.CancelFunc) (func(), error) {
	o := *app.Console
	base := console.Options{
		Name: app.Name, Version: o.Version, Eventer: rt.Eventer, Logs: rt.Logs, Config: rt.Config,
		Runtime: consoleRuntime(app, rt, stop),
		OnError: func(err error) {
			rt.Logs.Facility("debug/console").Log().Err(err).Msg("console connection")
		},
	}
	// One server per <listener type="mtev_console">, so that each can be
	// stopped alone on reload.
	listener.Register("mtev_console", func(spec *listener.Spec) (listener.Server, error) {
		opts := base
		allow, err := console.ParseACL(strings.Split(spec.Config["acl"], ","))
		if err != nil {
			return nil, err
		}
		opts.Allow = allow
		opts.HistoryFile = spec.Config["history_file"]
		switch spec.Config["line_protocol"] {
		case "telnet":
			opts.Telnet = "on"
		case "", "auto":
		case "plain", "none":
			opts.Telnet = "off"
		default:
			return nil, fmt.Errorf("console: line_protocol %q: want telnet, auto or plain", spec.Config["line_protocol"])
		}
		return console.NewServer(opts), nil
	})
	srv := console.NewServer(base)
	if rt.Router != nil {
		if err := srv.Mount(rt.Router); err != nil {
			return nil, fmt.Errorf("runtime: console: %w", err)
		}
	}
	rt.Console = srv
	defaulted := false
	if o.Socket == "" {
		if dir := watchdog.DefaultStateDir(os.Getenv); dir != "" {
			o.Socket = console.SocketPath(dir, serviceName(app))
			defaulted = true
		}
	}
	if o.Socket == "" || o.Socket == "-" {
		return func() { shutdownConsole(srv) }, nil
	}
	ln, err := console.ListenUnix(o.Socket)
	if err != nil {
		if defaulted && errors.Is(err, fs.ErrPermission) {
			// A child run as another user than its supervisor (--user)
			// may not write the supervisor's state directory: it serves
			// its console on its listeners only.
			fmt.Fprintf(os.Stderr, "%s: console: no unix socket: %v\n", app.Name, err)
			return func() { shutdownConsole(srv) }, nil
		}
		return nil, fmt.Errorf("runtime: console: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, console.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "%s: console: %v\n", app.Name, err)
		}
	}()
	return func() { shutdownConsole(srv); <-done }, nil
}

func shutdownConsole(srv *console.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}

// consoleRuntime gives the console what acts on this process and its
// supervisor.
func consoleRuntime(app App, rt *Runtime, stop context.CancelFunc) console.Runtime {
	service := serviceName(app)
	stateDir := watchdog.DefaultStateDir(os.Getenv)
	control := func(op string) (*watchdog.StatusInfo, error) {
		if !rt.Supervised || stateDir == "" {
			return nil, fmt.Errorf("runtime: %s: this process is not supervised", op)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return watchdog.Control(ctx, stateDir, service, op)
	}
	r := console.Runtime{
		Hang:  rt.Hang,
		Crash: rt.crashLoop,
		Hearts: func() ([]console.Heart, error) {
			st, err := control("status")
			if err != nil {
				return nil, err
			}
			var hs []console.Heart
			for _, h := range st.Hearts {
				hs = append(hs, console.Heart{Slot: h.Slot, Name: h.Name, State: h.State,
					Timeout: time.Duration(h.TimeoutMS) * time.Millisecond, Age: time.Duration(h.AgeMS) * time.Millisecond, Beats: h.Beats})
			}
			return hs, nil
		},
		Incidents: func(n int) ([]console.Incident, error) {
			if stateDir == "" {
				return nil, fmt.Errorf("runtime: no state directory")
			}
			return incidents(stateDir, service, n)
		},
		Restart: func() error {
			_, err := control("restart")
			return err
		},
		Shutdown: func() error {
			if !rt.Supervised {
				stop()
				return nil
			}
			_, err := control("stop")
			return err
		},
	}
	if rt.Config != nil {
		r.Reload = rt.Reload
	}
	if rt.Modules != nil {
		r.Modules = func() (console.Listing, error) {
			return console.Listing{Value: rt.Modules.List(), Text: rt.Modules.Show}, nil
		}
	}
	if m := rt.Clusters; m != nil {
		r.Clusters = func(args []string) (console.Listing, error) {
			v, err := m.Topology(args)
			return console.Listing{Value: v, Text: func(w io.Writer) error { return m.ShowCluster(w, args) }}, err
		}
		r.ClusterNames = func() []string { return m.CompleteCluster("") }
	}
	return r
}

// crashLoop crashes the process from loop index of the default pool.
func (rt *Runtime) crashLoop(index int) error {
	p := rt.Eventer.Default()
	if index < 0 || index >= p.Len() {
		return fmt.Errorf("%w: %s/%d", errNoLoop, p.Name(), index)
	}
	return p.Loop(index).Post(crashNow)
}

// incidents reads the newest n records of service from the journal of
// stateDir, newest first.
func incidents(stateDir, service string, n int) ([]console.Incident, error) {
	recs, err := builtin.ReadIncidents(stateDir, service, n)
	if err != nil {
		return nil, fmt.Errorf("runtime: incidents: %w", err)
	}
	out := make([]console.Incident, 0, len(recs))
	for _, rec := range recs {
		in := console.Incident{ID: rec.ID, Time: rec.Time, Reason: string(rec.Reason),
			Action: string(rec.Action), Culprit: trace.Summary(rec), Fingerprint: trace.ShortFingerprint(trace.Fingerprint(rec))}
		if rec.Exit != nil {
			in.Exit = rec.Exit.String()
		}
		if rec.Stall != nil {
			in.Heart = rec.Stall.Heart
		}
		out = append(out, in)
	}
	return out, nil
}
