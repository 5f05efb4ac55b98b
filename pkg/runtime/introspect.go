package runtime

import (
	"net/http"
	"os"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime/builtin"
	"github.com/mtev-supervise/mtev-supervise/pkg/stats"
	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// StateDirEnv names the supervisor's state directory in a child's
// environment; the child reads its incidents there (read-only).
const StateDirEnv = "MTEV_STATE_DIR"

// processStart is when this process started, for uptime.
var processStart = time.Now()

// eventerStats is where the eventer registers unless the app chose.
func eventerStats(ns *stats.Namespace) *stats.Namespace {
	if ns != nil {
		return ns
	}
	return stats.Default.NS("mtev/eventer")
}

// MountBuiltins mounts the built-in endpoints and the dashboard
// (pkg/runtime/builtin) on m, reading this runtime: its eventer, logs,
// hearts, start count, flight recorder, the stats registry, and the
// supervisor's journal (from MTEV_STATE_DIR). Fields set in o win. It also
// registers the log facilities' counters (mtev/log/lines/<facility>, ...)
// in the registry.
func (rt *Runtime) MountBuiltins(m builtin.Mounter, o builtin.Options) error {
	if o.Service == "" {
		o.Service = rt.name
	}
	if o.Version == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			o.Version = bi.Main.Version
		}
	}
	if o.Started.IsZero() {
		o.Started = processStart
	}
	if o.StartCount == 0 {
		o.StartCount = rt.StartCount
	}
	o.Supervised = o.Supervised || rt.Supervised
	if o.Stats == nil {
		o.Stats = stats.Default
	}
	if o.Stats.AppName() == "" && o.Service != "" {
		o.Stats.SetApp(o.Service)
	}
	if o.Eventer == nil {
		o.Eventer = rt.Eventer
	}
	if o.Logs == nil {
		o.Logs = rt.Logs
	}
	if o.Hearts == nil {
		switch {
		case rt.Hearts != nil:
			o.Hearts = builtin.TableHearts(rt.Hearts, rt.Eventer)
		case rt.Eventer != nil:
			o.Hearts = builtin.LoopHearts(rt.Eventer)
		}
	}
	if o.Incidents == nil {
		if dir := os.Getenv(StateDirEnv); dir != "" && rt.Supervised {
			service := o.Service
			o.Incidents = func(limit int) ([]*trace.Record, error) {
				return builtin.ReadIncidents(dir, service, limit)
			}
		}
	}
	if o.Flight == nil && rt.flight != nil {
		o.Flight = rt.flight
	}
	if rt.Logs != nil {
		registerLogStats(o.Stats.NS("mtev/log"), rt.Logs)
	}
	registerConfigStats(o.Stats.NS("mtev/config"))
	return builtin.Mount(m, o)
}

// registerLogStats registers, for each facility with an output of its own,
// counters of the lines it wrote, dropped and failed to write (libmtev's
// mtev/log/lines/<stream>). Facilities already registered are skipped, so
// it may run again after a reconfiguration.
func registerLogStats(ns *stats.Namespace, g *log.Graph) {
	for _, st := range g.Stats() {
		if st.Type == "" {
			continue
		}
		name := st.Name
		read := func(pick func(log.Stats) uint64) func() uint64 {
			return func() uint64 {
				for _, s := range g.Stats() {
					if s.Name == name {
						return pick(s)
					}
				}
				return 0
			}
		}
		_ = ns.NS("lines").CounterFunc(statsName(name), read(func(s log.Stats) uint64 { return s.Lines }))
		_ = ns.NS("dropped").CounterFunc(statsName(name), read(func(s log.Stats) uint64 { return s.Dropped }))
		_ = ns.NS("errors").CounterFunc(statsName(name), read(func(s log.Stats) uint64 { return s.Errors }))
	}
}

// statsName makes a facility name ("debug/eventer") one stats name.
func statsName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '/' || c == '|' {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// registerConfigStats registers what pkg/config measures: its caches of
// compiled expressions.
func registerConfigStats(ns *stats.Namespace) {
	_ = ns.GaugeFunc("cached_paths", func() float64 { p, _ := config.CacheSizes(); return float64(p) })
	_ = ns.GaugeFunc("cached_regexps", func() float64 { _, r := config.CacheSizes(); return float64(r) })
}

// routerMounter mounts the built-in endpoints on the runtime's REST
// router, behind its ACLs. Endpoints that hold a request (traces,
// profiles, websockets) get no handler deadline and no compression.
type routerMounter struct{ r *rest.Router }

func (m routerMounter) Handle(method, base, expr string, h http.Handler) error {
	return m.r.Route(rest.Route{Method: method, Base: base, Expr: expr, Handler: h})
}

func (m routerMounter) HandleUnbounded(method, base, expr string, h http.Handler) error {
	return m.r.Route(rest.Route{Method: method, Base: base, Expr: expr, Handler: h, Deadline: -1, NoCompress: true})
}

// mountBuiltins mounts the built-in endpoints and the dashboard on
// rt.Router, after App.Start so that a "/" the app claimed is left to it
// (the dashboard then lives at /mtev/ only).
func (rt *Runtime) mountBuiltins() error {
	if rt.Router == nil {
		return nil
	}
	registerHTTPStats(stats.Default)
	o := builtin.Options{AppClaimsRoot: claimsRoot(rt.Router)}
	if rt.disclose {
		o.Routes = rt.routeTable
	}
	return rt.MountBuiltins(routerMounter{rt.Router}, o)
}

// claimsRoot says whether a GET route of the router serves "/".
func claimsRoot(r *rest.Router) bool {
	for _, e := range r.Endpoints()["/"] {
		if e.Method != http.MethodGet {
			continue
		}
		if re, err := regexp.Compile("^(?:" + e.Expression + ")$"); err == nil && re.MatchString("") {
			return true
		}
	}
	return false
}

// DiscloseEndpoints turns /mtev/rest.json on: the route table of
// rt.Router, by base (libmtev's mtev_http_rest_disclose_endpoints). It is
// off unless the app calls this from App.Start.
func (rt *Runtime) DiscloseEndpoints() { rt.disclose = true }

// routeTable is rt.Router's route table for /mtev/rest.json.
func (rt *Runtime) routeTable() map[string][]builtin.Route {
	out := map[string][]builtin.Route{}
	if rt.Router == nil {
		return out
	}
	for base, es := range rt.Router.Endpoints() {
		for _, e := range es {
			out[base] = append(out[base], builtin.Route{Method: e.Method, Expression: e.Expression})
		}
	}
	return out
}
