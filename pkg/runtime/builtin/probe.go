package builtin

import (
	"net/http"
	"runtime/trace"
)

// HTTPProbe wraps h so that, while an execution trace is being taken, each
// request runs in a task "http-request" with a region per request noting
// the method and path (libmtev's http-request-start/-finish probes).
func HTTPProbe(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !trace.IsEnabled() {
			h.ServeHTTP(w, r)
			return
		}
		ctx, task := trace.NewTask(r.Context(), "http-request")
		defer task.End()
		trace.Log(ctx, "request", r.Method+" "+r.URL.Path)
		trace.WithRegion(ctx, "http-request", func() { h.ServeHTTP(w, r.WithContext(ctx)) })
	})
}
