package builtin

import (
	"bytes"
	"fmt"
	"math/bits"
	"net/http"
	"net/http/pprof"
	"runtime"
	rpprof "runtime/pprof"
	"runtime/trace"
	"strconv"
	"time"
)

type pprofRoute struct {
	method, base, expr string
	h                  http.HandlerFunc
	long               bool
}

// pprofRoutes are net/http/pprof's handlers under /debug/pprof/.
func pprofRoutes() []pprofRoute {
	return []pprofRoute{
		{"GET", "/debug/pprof/", `cmdline`, pprof.Cmdline, false},
		{"GET", "/debug/pprof/", `profile`, pprof.Profile, true},
		{"GET", "/debug/pprof/", `symbol`, pprof.Symbol, false},
		{"POST", "/debug/pprof/", `symbol`, pprof.Symbol, false},
		{"GET", "/debug/pprof/", `trace`, pprof.Trace, true},
		{"GET", "/debug/pprof/", `[A-Za-z_]*`, pprof.Index, true}, // ?seconds= makes a delta profile
	}
}

// defaultMemProfileRate is the Go runtime's default heap sampling rate.
const defaultMemProfileRate = 512 * 1024

// heapProfile serves /mtev/heap_profile in libmtev's manner, over Go's
// heap profiler instead of jemalloc's:
//
//   - no parameter: three lines, opt.prof, prof.active and prof.lg_sample
//     (log2 of runtime.MemProfileRate);
//   - active=true|false: turns sampling on (the default rate) or off;
//   - trigger_dump=true: the heap profile, in pprof's format.
func (s *server) heapProfile(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("trigger_dump") == "true":
		var buf bytes.Buffer
		if err := rpprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
			jsonError(w, http.StatusInternalServerError, "heap profile: %v", err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="heap.pprof"`)
		_, _ = w.Write(buf.Bytes())
		return
	case q.Has("active"):
		on, err := strconv.ParseBool(q.Get("active"))
		if err != nil {
			jsonError(w, http.StatusBadRequest, "active=%q: want true or false", q.Get("active"))
			return
		}
		if on {
			runtime.MemProfileRate = defaultMemProfileRate
		} else {
			runtime.MemProfileRate = 0
		}
	}
	rate := runtime.MemProfileRate
	lg := 0
	if rate > 0 {
		lg = bits.Len(uint(rate)) - 1
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "opt.prof: true\nprof.active: %t\nprof.lg_sample: %d\n", rate > 0, lg)
}

// traceNow serves /mtev/trace?seconds=N: an execution trace of the next N
// seconds (default 1, at most MaxTrace). Only one trace runs at a time:
// another request meanwhile gets 409.
func (s *server) traceNow(w http.ResponseWriter, r *http.Request) {
	secs := 1.0
	if v := r.URL.Query().Get("seconds"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0) {
			jsonError(w, http.StatusBadRequest, "seconds=%q: want a positive number", v)
			return
		}
		secs = f
	}
	d := time.Duration(secs * float64(time.Second))
	if d > s.o.MaxTrace {
		jsonError(w, http.StatusBadRequest, "seconds=%g: at most %g", secs, s.o.MaxTrace.Seconds())
		return
	}
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		jsonError(w, http.StatusConflict, "trace: %v", err)
		return
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-r.Context().Done():
		t.Stop()
	}
	trace.Stop()
	if r.Context().Err() != nil {
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="mtev.trace"`)
	_, _ = w.Write(buf.Bytes())
}

// flightTrace serves /mtev/flight.trace: the flight recorder's window.
func (s *server) flightTrace(w http.ResponseWriter, r *http.Request) {
	if s.o.Flight == nil {
		jsonError(w, http.StatusNotFound, "flight recorder: %v", errMissing)
		return
	}
	var buf bytes.Buffer
	if _, err := s.o.Flight.WriteTo(&buf); err != nil {
		jsonError(w, http.StatusServiceUnavailable, "flight recorder: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="flight.trace"`)
	_, _ = w.Write(buf.Bytes())
}
