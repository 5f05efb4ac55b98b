package runtime

import (
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
	"github.com/mtev-supervise/mtev-supervise/pkg/stats"
)

// routeStats are one route's metrics (libmtev's rest.<route>.latency and
// .requests).
type routeStats struct {
	requests *stats.Counter
	latency  *stats.Histogram
}

var httpStatsOnce sync.Once

// registerHTTPStats attaches the HTTP layer to the stats registry and the
// probes, once per process, through pkg/rest's hook points:
//
//   - mtev/rest/<route>/requests and latency (tag route:<name>), per route
//     the router matched ("unrouted" for 404s and refusals);
//   - mtev/http/http1|http2/requests, and responses/<code class> ("2xx");
//   - while an execution trace is taken, each request is a task
//     "http-request" logging its method and path (libmtev's
//     http-request-start/-finish probes).
func registerHTTPStats(reg *stats.Registry) {
	httpStatsOnce.Do(func() {
		restNS := reg.NS("mtev/rest")
		httpNS := reg.NS("mtev/http")
		var routes sync.Map // route name → *routeStats
		var tasks sync.Map  // *rest.Exchange → *trace.Task, only while tracing
		rest.PostRequest.Register("mtev-probe", func(x *rest.Exchange) hook.Result {
			if trace.IsEnabled() {
				ctx, task := trace.NewTask(x.Request.Context(), "http-request")
				trace.Log(ctx, "request", x.Request.Method+" "+x.Request.URL.Path)
				tasks.Store(x, task)
			}
			return hook.Continue
		})
		rest.RequestComplete.Register("mtev-stats", func(x *rest.Exchange) hook.Result {
			if t, ok := tasks.LoadAndDelete(x); ok {
				t.(*trace.Task).End()
			}
			name := x.Route
			if name == "" {
				name = "unrouted"
			}
			v, ok := routes.Load(name)
			if !ok {
				ns := restNS.NS(statsName(name), stats.Tag{Key: "route", Value: tagValue(name)})
				v, _ = routes.LoadOrStore(name, &routeStats{requests: ns.Counter("requests"), latency: ns.Histogram("latency")})
			}
			rs := v.(*routeStats)
			rs.requests.Inc()
			rs.latency.RecordDuration(time.Since(x.Start))
			proto := "http1"
			if x.Request.ProtoMajor == 2 {
				proto = "http2"
			}
			p := httpNS.NS(proto)
			p.Counter("requests").Inc()
			if x.Status >= 100 && x.Status < 600 {
				p.NS("responses").Counter(strconv.Itoa(x.Status/100) + "xx").Inc()
			}
			return hook.Continue
		})
	})
}

// tagValue makes a route name usable as a tag value (no ",[]|").
func tagValue(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(",[]|", r) {
			return '_'
		}
		return r
	}, s)
}
