package builtin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/stats"
	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// Mounter is what the endpoints are mounted on: libmtev's routing, a method,
// a base prefix, and a regular expression matched (anchored) against the
// rest of the path. pkg/rest's Router satisfies it.
type Mounter interface {
	Handle(method, base, expr string, h http.Handler) error
}

// UnboundedMounter is a Mounter that can also mount a route whose handler
// has no deadline and whose responses are not compressed: the endpoints
// that hold a request for as long as asked (/mtev/trace, pprof profiles)
// or for the life of a websocket. Mount uses it when m has it.
type UnboundedMounter interface {
	Mounter
	HandleUnbounded(method, base, expr string, h http.Handler) error
}

// MethodWebSocket is the method of the websocket routes (libmtev's "WS",
// pkg/rest's MethodWebSocket): GET requests asking for an upgrade.
const MethodWebSocket = "WS"

// Heart is one heart as /mtev/hearts.json shows it.
type Heart struct {
	Name      string `json:"name"`
	Loop      string `json:"loop,omitempty"` // the eventer loop that beats it, if any
	Slot      int    `json:"slot"`
	ThreadID  int    `json:"thread_id,omitempty"`
	TimeoutMS int64  `json:"timeout_ms"`
	AgeMS     int64  `json:"age_ms"`
	State     string `json:"state"` // "on", "disabled"
}

// Route is one entry of /mtev/rest.json.
type Route struct {
	Method     string `json:"method"`
	Expression string `json:"expression"`
}

// Recorder is the flight recorder behind /mtev/flight.trace
// (*dump.Recorder satisfies it).
type Recorder interface {
	WriteTo(w io.Writer) (int64, error)
}

// Options say what the endpoints read. Every field is optional: an endpoint
// whose source is missing answers 404 with a JSON error naming what is
// missing, except /mtev/rest.json, which exists only with Routes.
type Options struct {
	// Service, Version and Started describe the service for
	// /mtev/status.json and the dashboard.
	Service    string
	Version    string
	Started    time.Time
	StartCount int
	Supervised bool

	// Stats is the registry of /mtev/stats.json and /metrics; nil means
	// stats.Default.
	Stats *stats.Registry
	// Eventer is read for /eventer/*.json.
	Eventer *eventer.System
	// Logs holds the memory outlets of /eventer/logs/<name>.json.
	Logs *log.Graph
	// Hearts lists the hearts for /mtev/hearts.json.
	Hearts func() []Heart
	// Incidents reads this service's recent incidents, newest first, at
	// most limit of them (see ReadIncidents).
	Incidents func(limit int) ([]*trace.Record, error)
	// Routes returns the route table by base, for /mtev/rest.json
	// (libmtev's mtev_http_rest_disclose_endpoints); nil leaves the
	// endpoint out.
	Routes func() map[string][]Route
	// Flight is the flight recorder behind /mtev/flight.trace.
	Flight Recorder
	// AppClaimsRoot says the application serves "/" itself: the dashboard
	// is then only at /mtev/.
	AppClaimsRoot bool
	// MaxTrace bounds /mtev/trace?seconds=N; zero means 60 s.
	MaxTrace time.Duration
}

type server struct {
	o Options
}

// Mount registers every built-in endpoint on m. It stops at the first
// route m refuses.
func Mount(m Mounter, o Options) error {
	if o.Stats == nil {
		o.Stats = stats.Default
	}
	if o.Started.IsZero() {
		o.Started = time.Now()
	}
	if o.Service == "" {
		o.Service = os.Getenv("MTEV_SERVICE")
	}
	if o.MaxTrace == 0 {
		o.MaxTrace = time.Minute
	}
	s := &server{o: o}
	type route struct {
		method, base, expr string
		h                  http.HandlerFunc
		long               bool // no deadline, no compression
	}
	routes := []route{
		{"GET", "/mtev/", `stats\.json`, s.statsJSON, false},
		{"DELETE", "/mtev/", `stats\.json`, s.statsDelete, false},
		{"GET", "/", `metrics`, s.metrics().ServeHTTP, false},
		{"GET", "/mtev/", `memory\.json`, s.memoryJSON, false},
		{"GET", "/mtev/", `status\.json`, s.statusJSON, false},
		{"GET", "/mtev/", `hearts\.json`, s.heartsJSON, false},
		{"GET", "/mtev/", `incidents\.json`, s.incidentsJSON, false},
		{"GET", "/mtev/", `heap_profile`, s.heapProfile, false},
		{"GET", "/mtev/", `trace`, s.traceNow, true},
		{"GET", "/mtev/", `flight\.trace`, s.flightTrace, true},
		{"GET", "/eventer/", `sockets\.json`, s.socketsJSON, false},
		{"GET", "/eventer/", `timers\.json`, s.timersJSON, false},
		{"GET", "/eventer/", `jobq\.json`, s.jobqJSON, false},
		{"GET", "/eventer/", `memory\.json`, s.eventerMemoryJSON, false},
		{"GET", "/eventer/", `pools\.json`, s.poolsJSON, false},
		{"GET", "/eventer/", `logs\.json`, s.logsList, false},
		{"GET", "/eventer/", `logs/[^/]+\.json`, s.logsJSON, false},
		{MethodWebSocket, "/eventer/", `logs/[^/]+\.ws`, s.logsWS, true},
		{"GET", "/mtev/", `(ui/.*)?`, s.dashboard, false},
	}
	if o.Routes != nil {
		routes = append(routes, route{"GET", "/mtev/", `rest\.json`, s.restJSON, false})
	}
	if !o.AppClaimsRoot {
		routes = append(routes, route{"GET", "/", ``, s.dashboard, false})
	}
	for _, r := range pprofRoutes() {
		routes = append(routes, route{r.method, r.base, r.expr, r.h, r.long})
	}
	um, unbounded := m.(UnboundedMounter)
	for _, r := range routes {
		var err error
		if r.long && unbounded {
			err = um.HandleUnbounded(r.method, r.base, r.expr, r.h)
		} else {
			err = m.Handle(r.method, r.base, r.expr, r.h)
		}
		if err != nil {
			return fmt.Errorf("builtin: mount %s %s%s: %w", r.method, r.base, r.expr, err)
		}
	}
	return nil
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "encode: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// jsonError answers {"error": "..."}, as libmtev's endpoints do.
func jsonError(w http.ResponseWriter, status int, format string, args ...any) {
	b, _ := json.Marshal(map[string]string{"error": fmt.Sprintf(format, args...)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// errMissing says an endpoint's source was not given.
var errMissing = errors.New("not available in this process")
