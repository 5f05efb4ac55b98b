package builtin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/runtime/builtin"
)

// TestSupervisedRuntimeEndpoints: the endpoints of a real runtime under a
// real supervisor, wired by Runtime.MountBuiltins.
func TestSupervisedRuntimeEndpoints(t *testing.T) {
	base := startDashboardService(t)
	get := func(path string, v any) []byte {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		return b
	}
	var st builtin.Status
	get("/mtev/status.json", &st)
	if st.Service != "dashboard" || st.Version == "" || st.StartCount != 1 || !st.Supervised || !st.Features.Journal || !st.Features.Flight || !st.Features.RestJSON {
		t.Errorf("status: %+v", st)
	}
	var hs []builtin.Heart
	get("/mtev/hearts.json", &hs)
	found := false
	for _, h := range hs {
		if h.Name == "e:stuck/0" && h.Loop == "e:stuck/0" && h.TimeoutMS == 300 {
			found = true
		}
	}
	if !found {
		t.Errorf("hearts: %+v", hs)
	}
	var inc struct{ Incidents []builtin.Incident }
	get("/mtev/incidents.json", &inc)
	in := inc.Incidents[0]
	if in.Stall == nil || in.Stall.Heart != "e:stuck/0" || in.Culprit == nil || !strings.Contains(in.Culprit.Top, "hangForever") || in.Fingerprint == "" {
		t.Errorf("incident: %+v culprit %+v", in, in.Culprit)
	}
	stats := string(get("/mtev/stats.json?format=tagged", nil))
	for _, want := range []string{"route:/mtev/(status", `"requests|ST[app:dashboard,framework:mtev-supervise,http:http1,mtev:http]"`, "internal|ST[app:dashboard,framework:mtev-supervise,log:lines,mtev:log]", "cached_paths|ST[", "cycletime|ST[app:dashboard,eventer:pool,framework:mtev-supervise,mtev:eventer,pool:stuck]"} {
		if !strings.Contains(stats, want) {
			t.Errorf("stats lack %s", want)
		}
	}
	if b := get("/mtev/flight.trace", nil); !strings.HasPrefix(string(b), "go 1.") {
		t.Errorf("flight.trace: %d bytes", len(b))
	}
	var routes map[string][]builtin.Route
	get("/mtev/rest.json", &routes)
	if len(routes["/mtev/"]) == 0 || len(routes["/eventer/"]) == 0 {
		t.Errorf("rest.json: %v", routes)
	}
	// An execution trace while the flight recorder runs.
	if b := get("/mtev/trace?seconds=0.1", nil); !strings.HasPrefix(string(b), "go 1.") {
		t.Errorf("trace: %d bytes", len(b))
	}
	if b := string(get("/metrics", nil)); !strings.Contains(b, `mtev_eventer_pool_cycletime_bucket{pool="stuck"`) {
		t.Errorf("/metrics lacks the stuck pool's cycle time")
	}
}
