package builtin_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime/builtin"
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

// dashboardApp serves the built-in endpoints and the dashboard on
// 127.0.0.1, keeps a timer busy (histograms), logs to a memory outlet,
// and hangs the one loop of its pool "stuck" so that the supervisor
// records a soft stall while the service keeps running.
func dashboardApp() runtime.App {
	return runtime.App{
		Name: "dashboard",
		Eventer: eventer.Options{Concurrency: 2, Pools: []eventer.PoolOptions{
			{Name: "stuck", Concurrency: 1, Timeout: 300 * time.Millisecond},
		}},
		Start: func(ctx context.Context, rt *runtime.Runtime) error {
			if err := rt.Logs.Configure(
				log.Spec{Name: "internal", Type: "memory", Path: "1000"},
				log.Spec{Name: "notice", Outlets: []string{"stderr", "internal"}},
			); err != nil {
				return err
			}
			notice := rt.Logs.Facility("notice")
			n := 0
			if _, err := rt.Eventer.Default().Loop(0).Every("ticker", 20*time.Millisecond, func() {
				if n++; n%25 == 0 {
					notice.Printf("tick %d", n)
				}
			}); err != nil {
				return err
			}
			m := &mux{}
			if err := rt.MountBuiltins(m, builtin.Options{Version: "v9.9.9-test"}); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: builtin.HTTPProbe(m), ReadHeaderTimeout: 5 * time.Second}
			go srv.Serve(ln)
			go func() { <-ctx.Done(); srv.Close() }()
			tmp := os.Getenv(addrFileEnv) + ".tmp"
			if err := os.WriteFile(tmp, []byte(ln.Addr().String()), 0o600); err != nil {
				return err
			}
			if err := os.Rename(tmp, os.Getenv(addrFileEnv)); err != nil {
				return err
			}
			notice.Printf("dashboard at http://%s/", ln.Addr())
			return rt.Hang("stuck", 0)
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
