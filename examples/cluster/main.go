// Command cluster is a small service that joins the clusters of its
// configuration file and shows them over HTTP, for trying pkg/cluster by
// hand and for the multi-process tests:
//
//	cluster -config node1.conf -http 127.0.0.1:8081
//
// It prints one line per node change on stdout:
//
//	CHANGE <cluster> <node id> <flags>
//
// and serves GET /cluster[/NAME][.json], POST /cluster, and
// PUT /payload/CLUSTER/APP/KEY (the body becomes this node's payload).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/mtev-supervise/mtev-supervise/pkg/cluster"
	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime"
)

func main() {
	conf := flag.String("config", "", "configuration file with a <clusters> section")
	addr := flag.String("http", "127.0.0.1:0", "HTTP address")
	flag.Parse()
	runtime.Main(app(*conf, *addr))
}

func app(conf, addr string) runtime.App {
	var srv *http.Server
	var wg sync.WaitGroup
	// The runtime joins the clusters of <clusters> before Start; a hook
	// attached now sees every change from the first contact on.
	var out sync.Mutex
	cluster.NodeChanged.Register("example", func(c cluster.Change) hook.Result {
		out.Lock()
		defer out.Unlock()
		fmt.Printf("CHANGE %s %s %s\n", c.Cluster.Name(), c.Node.ID, c.Flags)
		return hook.Continue
	})
	return runtime.App{
		Name:       "cluster",
		ConfigFile: conf,
		Start: func(ctx context.Context, rt *runtime.Runtime) error {
			m := rt.Clusters
			if m == nil {
				return errors.New("cluster: the configuration has no <clusters>")
			}
			mx := rest.New(rest.Options{})
			if err := m.Mount(mx); err != nil {
				return err
			}
			mx.Handle(http.MethodPut, "/payload/", `^([^/]+)/(\d+)/(\d+)$`, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/payload/"), "/")
				c, ok := m.Cluster(parts[0])
				app, err1 := strconv.ParseUint(parts[1], 10, 8)
				key, err2 := strconv.ParseUint(parts[2], 10, 8)
				if !ok || err1 != nil || err2 != nil {
					http.Error(w, "no such cluster, app or key", http.StatusNotFound)
					return
				}
				body, _ := io.ReadAll(r.Body)
				if err := c.SetPayload(uint8(app), uint8(key), body); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			fmt.Printf("HTTP %s\n", ln.Addr())
			srv = &http.Server{Handler: mx}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					fmt.Fprintln(os.Stderr, "cluster: http:", err)
				}
			}()
			return nil
		},
		Run: func(ctx context.Context, rt *runtime.Runtime) error {
			<-ctx.Done()
			srv.Close()
			wg.Wait()
			return nil
		},
	}
}
