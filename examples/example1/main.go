// Command example1 is libmtev's example application rebuilt on pkg/runtime:
// a self-supervising service with an HTTP listener and an operator
// console, configured by example1.conf beside it.
//
//	example1 -c example1.conf          supervise itself and serve
//	example1 -c example1.conf -D       run in the foreground, unsupervised
//	mtev-supervise run -- example1 -c example1.conf
//
// HTTP (the <listeners> of type http_rest_api):
//
//	GET /hello   "Hello world!"
//	GET /test    does its work on the job queue "example" and answers when
//	             the job completes (?ms=N: work N milliseconds, default 50)
//
// Console (telnet to the mtev_console listener, or mtev-supervise
// console): the built-in commands, and
//
//	show widgets        the widgets kept in the configuration
//	widget add NAME     add one; the file is written back
//	no widget NAME      remove one
//
// Clusters: with a <clusters> section in the file the runtime joins them;
// the example's topology hook logs every node change (joined, died,
// rebooted, a new seq or payload) to the "notice" facility.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/cluster"
	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/console"
	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime"
)

func main() { os.Exit(Main(os.Args[1:])) }

// Main parses the flags and runs the service; it returns the exit status.
func Main(args []string) int {
	fs := flag.NewFlagSet("example1", flag.ContinueOnError)
	conf := fs.String("c", "", "configuration `file` (root element <example1>)")
	foreground := fs.Bool("D", false, "run in the foreground, without a supervisor")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *conf == "" {
		fmt.Fprintln(os.Stderr, "example1: -c FILE is required")
		return 2
	}
	if *foreground {
		os.Setenv(runtime.ForegroundEnv, "1")
	}
	return runtime.Status("example1", runtime.Run(context.Background(), runtime.App{
		Name:       "example1",
		ConfigFile: *conf,
		Console:    &runtime.ConsoleOptions{Version: "example1 1.0"},
		Start:      start,
		Run:        run,
	}))
}

// WidgetSection declares where the widgets live: <widgets><widget
// name="..."/></widgets>.
var WidgetSection = config.Section{
	Path: "widgets",
	Doc:  "The example's widgets, kept by the console commands.",
	Element: config.Element{Children: []config.Element{{
		Name: "widget", Repeated: true, Doc: "One widget.",
		Attrs: []config.Attr{{Name: "name", Required: true, Pattern: `^[A-Za-z0-9_.-]+$`, Doc: "its name"}},
	}}},
}

func init() {
	config.Register(WidgetSection)
	console.Register("show widgets", showWidgets, nil).Describe("the widgets in the configuration")
	console.Register("widget", nil, nil).Describe("add")
	console.Register("widget add", addWidget, nil).Describe("widget add NAME: add a widget (written back to the file)")
	console.Register("no widget", removeWidget, widgetNames).Describe("no widget NAME: remove a widget")
}

func widgets(c *config.Config) ([]string, error) {
	nodes, err := c.FindAll("/example1/widgets/widget")
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, n := range nodes {
		if v, ok := n.Attr("name"); ok {
			names = append(names, v)
		}
	}
	return names, nil
}

func showWidgets(s *console.Session, args []string) error {
	c := s.Server().Options().Config
	names, err := widgets(c)
	if err != nil {
		return err
	}
	return s.Output(names, func(w io.Writer) {
		fmt.Fprintf(w, "%d widgets\n", len(names))
		for _, n := range names {
			fmt.Fprintf(w, "  %s\n", n)
		}
	})
}

func addWidget(s *console.Session, args []string) error {
	c := s.Server().Options().Config
	if len(args) != 1 {
		return fmt.Errorf("usage: widget add NAME")
	}
	names, err := widgets(c)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == args[0] {
			return fmt.Errorf("widget %q exists", args[0])
		}
	}
	if _, ok, _ := c.Find("/example1/widgets"); !ok {
		if err := c.Add("/example1", "<widgets/>"); err != nil {
			return err
		}
	}
	if err := c.Add("/example1/widgets", fmt.Sprintf("<widget name=%q/>", args[0])); err != nil {
		return err
	}
	// Validate what the operator typed like the file itself.
	if err := c.Validate(WidgetSection); err != nil {
		c.Remove(fmt.Sprintf("/example1/widgets/widget[@name='%s']", args[0]))
		return err
	}
	if err := c.Flush(); err != nil {
		return err
	}
	return s.Output(map[string]string{"added": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "added %s\n", args[0]) })
}

func removeWidget(s *console.Session, args []string) error {
	c := s.Server().Options().Config
	if len(args) != 1 {
		return fmt.Errorf("usage: no widget NAME")
	}
	p := fmt.Sprintf("/example1/widgets/widget[@name='%s']", args[0])
	if _, ok, err := c.Find(p); err != nil || !ok {
		return fmt.Errorf("no widget %q", args[0])
	}
	if err := c.Remove(p); err != nil {
		return err
	}
	return c.Flush()
}

func widgetNames(s *console.Session, args []string) []string {
	names, _ := widgets(s.Server().Options().Config)
	return names
}

// topology is the example's cluster topology hook: libmtev's example
// attaches to mtev_cluster_handle_node_update the same way.
func topology(rt *runtime.Runtime) func(cluster.Change) hook.Result {
	return func(c cluster.Change) hook.Result {
		rt.Logs.Facility("notice").Log().Str("cluster", c.Cluster.Name()).
			Str("node", c.Node.ID).Str("change", c.Flags.String()).Msg("cluster topology changed")
		return hook.Continue
	}
}

func start(ctx context.Context, rt *runtime.Runtime) error {
	cluster.NodeChanged.Register("example1-topology", topology(rt))
	r := rt.Router
	if err := r.HandleFunc("GET", "/", "hello", func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintln(w, "Hello world!")
	}); err != nil {
		return err
	}
	q := rt.Eventer.Queue("example")
	if q == nil {
		return fmt.Errorf("example1: no job queue \"example\" (<eventer><config><jobq_example>)")
	}
	return r.HandleFunc("GET", "/", "test", func(w http.ResponseWriter, req *http.Request) {
		ms := 50
		if v := req.URL.Query().Get("ms"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 60000 {
				rest.Error(w, http.StatusBadRequest, "ms %q: want 0 to 60000", v)
				return
			}
			ms = n
		}
		done := make(chan error, 1)
		started := time.Now()
		err := q.Add(req.Context(), eventer.Job{
			Name: "example/test",
			Work: func(ctx context.Context) error {
				select {
				case <-time.After(time.Duration(ms) * time.Millisecond):
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			},
			Done: func(err error) { done <- err },
		})
		if err != nil {
			rest.Error(w, http.StatusServiceUnavailable, "queue: %v", err)
			return
		}
		select {
		case err := <-done:
			if err != nil {
				rest.Error(w, http.StatusInternalServerError, "job: %v", err)
				return
			}
			rest.WriteJSON(w, http.StatusOK, map[string]any{"queue": "example", "work_ms": ms,
				"elapsed_ms": time.Since(started).Milliseconds()})
		case <-req.Context().Done():
		}
	})
}

// run serves until TERM; HUP reloads the configuration.
func run(ctx context.Context, rt *runtime.Runtime) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			if _, err := rt.Reload(); err != nil {
				rt.Logs.Facility("error").Log().Err(err).Msg("reload refused")
			}
		}
	}
}
