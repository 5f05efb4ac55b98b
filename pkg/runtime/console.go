package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/console"
	"github.com/mtev-supervise/mtev-supervise/pkg/journal"
	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// ConsoleOptions configure the console a service serves (App.Console).
type ConsoleOptions struct {
	// Socket is the unix socket; default console.SocketPath(state dir,
	// service name). "-" serves none.
	Socket string
	// Address is a TCP address to serve too ("" none). A missing host
	// binds loopback: ":32322" is 127.0.0.1:32322.
	Address string
	// Allow lists the networks (CIDR or address) TCP clients may come
	// from; empty means loopback only.
	Allow []string
	// Version is shown by "show version".
	Version string
}

// ConsoleSection declares the <console> section: the console's listeners
// and ACL, over App.Console.
//
//	<console address="127.0.0.1:32322" socket="/run/app/console">
//	  <acl ip="10.0.0.0/8"/>
//	</console>
var ConsoleSection = config.Section{
	Path: "console",
	Doc:  "The operator console (telnet, unix socket, websocket).",
	Element: config.Element{
		Attrs: []config.Attr{
			{Name: "address", Doc: "TCP address to serve the console on; a missing host binds loopback."},
			{Name: "socket", Doc: "unix socket path (default: `<state dir>/run/<service>.console`; `-` for none)."},
		},
		Children: []config.Element{{
			Name: "acl", Repeated: true, Doc: "A network TCP clients may come from (loopback only without any).",
			Attrs: []config.Attr{{Name: "ip", Required: true, Doc: "an address or CIDR"}},
		}},
	},
}

func init() { config.Register(ConsoleSection) }

// ServiceName is the name the supervisor knows this process by
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
	if rt.Config != nil {
		v, err := rt.Config.Section(ConsoleSection)
		if err != nil {
			return nil, err
		}
		if n := v.Node(); n.Valid() {
			if a, ok := n.Attr("address"); ok {
				o.Address = a
			}
			if sp, ok := n.Attr("socket"); ok {
				o.Socket = sp
			}
			for _, acl := range v.Children("acl") {
				o.Allow = append(o.Allow, acl.String("ip"))
			}
		}
	}
	allow, err := console.ParseACL(o.Allow)
	if err != nil {
		return nil, err
	}
	srv := console.NewServer(console.Options{
		Name: app.Name, Version: o.Version, Eventer: rt.Eventer, Logs: rt.Logs, Config: rt.Config,
		Allow: allow, Runtime: consoleRuntime(app, rt, stop),
	})
	var lns []net.Listener
	fail := func(err error) (func(), error) {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	service := serviceName(app)
	stateDir := watchdog.DefaultStateDir(os.Getenv)
	if o.Socket == "" && stateDir != "" {
		o.Socket = console.SocketPath(stateDir, service)
	}
	if o.Socket != "" && o.Socket != "-" {
		ln, err := console.ListenUnix(o.Socket)
		if err != nil {
			return fail(fmt.Errorf("runtime: console: %w", err))
		}
		ln.SetUnlinkOnClose(true)
		lns = append(lns, ln)
	}
	if o.Address != "" {
		addr := o.Address
		if strings.HasPrefix(addr, ":") {
			addr = "127.0.0.1" + addr
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(fmt.Errorf("runtime: console: %w", err))
		}
		lns = append(lns, ln)
	}
	done := make(chan struct{}, len(lns))
	for _, ln := range lns {
		go func() {
			defer func() { done <- struct{}{} }()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, console.ErrServerClosed) {
				fmt.Fprintf(os.Stderr, "%s: console: %v\n", app.Name, err)
			}
		}()
	}
	rt.Console = srv
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		for range lns {
			<-done
		}
	}, nil
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
