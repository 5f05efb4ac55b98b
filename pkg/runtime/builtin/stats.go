package builtin

import (
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/stats"
)

// statsJSON serves GET /mtev/stats.json[?format=simple|tagged][&reset=1].
func (s *server) statsJSON(w http.ResponseWriter, r *http.Request) {
	f, err := stats.ParseFormat(r.URL.Query().Get("format"))
	if err != nil {
		jsonError(w, http.StatusBadRequest, "%v", err)
		return
	}
	reset := r.URL.Query().Get("reset") == "1"
	writeJSON(w, http.StatusOK, s.o.Stats.JSON(f, reset))
}

// statsDelete serves DELETE /mtev/stats.json[?type=histogram|counter]:
// {"stats_cleared": N} (without libmtev's stray NUL byte).
func (s *server) statsDelete(w http.ResponseWriter, r *http.Request) {
	kind := stats.KindHistogram
	switch t := r.URL.Query().Get("type"); t {
	case "", "histogram":
	case "counter":
		kind = stats.KindCounter
	default:
		jsonError(w, http.StatusBadRequest, "type %q: want histogram or counter", t)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"stats_cleared": s.o.Stats.Reset(kind)})
}

func (s *server) metrics() http.Handler { return stats.Handler(s.o.Stats) }

// memoryJSON serves /mtev/memory.json: every scalar of runtime/metrics
// under "go" (libmtev serves jemalloc's statistics under "jemalloc").
func (s *server) memoryJSON(w http.ResponseWriter, r *http.Request) {
	descs := metrics.All()
	samples := make([]metrics.Sample, 0, len(descs))
	for _, d := range descs {
		if d.Kind == metrics.KindUint64 || d.Kind == metrics.KindFloat64 {
			samples = append(samples, metrics.Sample{Name: d.Name})
		}
	}
	metrics.Read(samples)
	out := map[string]any{}
	for _, sm := range samples {
		switch sm.Value.Kind() {
		case metrics.KindUint64:
			out[sm.Name] = sm.Value.Uint64()
		case metrics.KindFloat64:
			out[sm.Name] = sm.Value.Float64()
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"go": out})
}

// Status is /mtev/status.json: what the dashboard's overview shows.
type Status struct {
	Service    string `json:"service"`
	Version    string `json:"version"`
	GoVersion  string `json:"go_version"`
	PID        int    `json:"pid"`
	Started    int64  `json:"start_time"` // ms since the epoch
	UptimeMS   int64  `json:"uptime_ms"`
	StartCount int    `json:"start_count"`
	Supervised bool   `json:"supervised"`
	Goroutines int    `json:"goroutines"`
	Features   struct {
		RestJSON bool `json:"rest_json"`
		Flight   bool `json:"flight_recorder"`
		Hearts   bool `json:"hearts"`
		Journal  bool `json:"incidents"`
	} `json:"features"`
}

func (s *server) statusJSON(w http.ResponseWriter, r *http.Request) {
	st := Status{
		Service: s.o.Service, Version: s.o.Version, GoVersion: runtime.Version(),
		PID: pid(), Started: s.o.Started.UnixMilli(), UptimeMS: time.Since(s.o.Started).Milliseconds(),
		StartCount: s.o.StartCount, Supervised: s.o.Supervised, Goroutines: runtime.NumGoroutine(),
	}
	st.Features.RestJSON = s.o.Routes != nil
	st.Features.Flight = s.o.Flight != nil
	st.Features.Hearts = s.o.Hearts != nil
	st.Features.Journal = s.o.Incidents != nil
	writeJSON(w, http.StatusOK, st)
}

// restJSON serves /mtev/rest.json: {"<base>":[{"method","expression"}]}.
func (s *server) restJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.o.Routes())
}

// heartsJSON serves /mtev/hearts.json: each heart with its name, loop,
// timeout, age and state.
func (s *server) heartsJSON(w http.ResponseWriter, r *http.Request) {
	if s.o.Hearts == nil {
		jsonError(w, http.StatusNotFound, "hearts: %v", errMissing)
		return
	}
	hs := s.o.Hearts()
	if hs == nil {
		hs = []Heart{}
	}
	writeJSON(w, http.StatusOK, hs)
}

func trimJSON(name string) string { return strings.TrimSuffix(name, ".json") }
