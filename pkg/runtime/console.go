package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/console"
	"github.com/mtev-supervise/mtev-supervise/pkg/journal"
	"github.com/mtev-supervise/mtev-supervise/pkg/listener"
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
	if o.Socket == "" {
		if dir := watchdog.DefaultStateDir(os.Getenv); dir != "" {
			o.Socket = console.SocketPath(dir, serviceName(app))
		}
	}
	if o.Socket == "" || o.Socket == "-" {
		return func() { shutdownConsole(srv) }, nil
	}
	ln, err := console.ListenUnix(o.Socket)
	if err != nil {
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
			return incidents(watchdog.JournalDir(stateDir), service, n)
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

// incidents reads the newest n records of service from the journal in dir,
// newest first.
func incidents(dir, service string, n int) ([]console.Incident, error) {
	r, err := journal.NewReader(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, journal.ErrNotJournal) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runtime: incidents: %w", err)
	}
	defer r.Close()
	var out []console.Incident
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("runtime: incidents: %w", err)
		}
		rec, err := trace.Decode(e.Data)
		if err != nil || rec.Service != service {
			continue
		}
		in := console.Incident{ID: strconv.FormatUint(e.Seq, 10), Time: rec.Time, Reason: string(rec.Reason),
			Action: string(rec.Action), Culprit: trace.Summary(rec), Fingerprint: trace.ShortFingerprint(trace.Fingerprint(rec))}
		if rec.Exit != nil {
			in.Exit = rec.Exit.String()
		}
		if rec.Stall != nil {
			in.Heart = rec.Stall.Heart
		}
		out = append(out, in)
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
