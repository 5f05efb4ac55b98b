package builtin_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime"
)

// appEnv makes the test binary run as the dashboard app (a real runtime
// under a real supervisor); addrFileEnv is where it writes its address.
const (
	appEnv      = "MTEV_BUILTIN_TEST_APP"
	addrFileEnv = "MTEV_BUILTIN_TEST_ADDR"
)

func TestMain(m *testing.M) {
	if os.Getenv(appEnv) == "dashboard" {
		runtime.Main(dashboardApp())
	}
	os.Exit(m.Run())
}

// dashboardConf is the dashboard app's configuration: one HTTP listener
// on a free port of 127.0.0.1, a memory outlet fed by notice.
const dashboardConf = `<?xml version="1.0"?>
<dashboard>
  <logs>
    <log name="internal" type="memory" path="1000"/>
    <log name="notice"><outlet name="stderr"/><outlet name="internal"/></log>
  </logs>
  <listeners>
    <listener type="http_rest_api" address="127.0.0.1" port="0"/>
  </listeners>
</dashboard>
`

// dashboardApp is a real runtime serving the built-in endpoints and the
// dashboard through its own REST router and <listeners> (the runtime
// mounts them); it keeps a timer busy (histograms), logs to a memory
// outlet, and hangs the one loop of its pool "stuck" so that the
// supervisor records a soft stall while the service keeps running.
func dashboardApp() runtime.App {
	conf := filepath.Join(filepath.Dir(os.Getenv(addrFileEnv)), "dashboard.conf")
	if err := os.WriteFile(conf, []byte(dashboardConf), 0o600); err != nil {
		panic(err)
	}
	return runtime.App{
		Name:       "dashboard",
		ConfigFile: conf,
		Console:    &runtime.ConsoleOptions{Version: "dashboard 1.0"},
		Eventer: eventer.Options{Concurrency: 2, Pools: []eventer.PoolOptions{
			{Name: "stuck", Concurrency: 1, Timeout: 300 * time.Millisecond},
		}},
		Start: func(ctx context.Context, rt *runtime.Runtime) error {
			rt.DiscloseEndpoints()
			notice := rt.Logs.Facility("notice")
			n := 0
			if _, err := rt.Eventer.Default().Loop(0).Every("ticker", 20*time.Millisecond, func() {
				if n++; n%25 == 0 {
					notice.Printf("tick %d", n)
				}
			}); err != nil {
				return err
			}
			return rt.Hang("stuck", 0)
		},
		Run: func(ctx context.Context, rt *runtime.Runtime) error {
			addr := rt.Listeners.Addr("http_rest_api")
			if addr == nil {
				return fmt.Errorf("no http_rest_api listener")
			}
			tmp := os.Getenv(addrFileEnv) + ".tmp"
			if err := os.WriteFile(tmp, []byte(addr.String()), 0o600); err != nil {
				return err
			}
			if err := os.Rename(tmp, os.Getenv(addrFileEnv)); err != nil {
				return err
			}
			rt.Logs.Facility("notice").Printf("dashboard at http://%s/", addr)
			<-ctx.Done()
			return nil
		},
	}
}

// waitFile polls for a file's content until the deadline.
func waitFile(t *testing.T, path string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", filepath.Base(path), d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
