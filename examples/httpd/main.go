// Command httpd is an HTTP server built on pkg/runtime from its
// configuration file alone, like libmtev's test_http_server: listeners,
// TLS, ACLs and the access log come from -c FILE (root element <httpd>).
// Run directly it supervises itself; under mtev-supervise it is the
// child.
//
// Routes:
//
//	POST /                 "HASH <n>": djb2 of the body, read in pieces of
//	                       ?readsize=N bytes with ?delay=SECONDS between reads
//	GET  /hang             never answers: the watchdog reports the stall
//	GET  /client-required  as the ACLs say (the example config: a client
//	                       certificate)
//	GET  /server-required  as the ACLs say (the example config: the TLS
//	                       listener)
//	GET  /capa, /capa.json the capabilities document
//	GET  /...              static files from the listener's document_root
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

	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime"
)

func main() { os.Exit(Main(os.Args[1:])) }

// Main parses the flags and runs the server; it returns the exit status.
func Main(args []string) int {
	fs := flag.NewFlagSet("httpd", flag.ContinueOnError)
	conf := fs.String("c", "", "configuration `file` (root element <httpd>)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *conf == "" {
		fmt.Fprintln(os.Stderr, "httpd: -c FILE is required")
		return 2
	}
	return runtime.Run(runtime.App{Name: "httpd", ConfigFile: *conf, Start: start, Run: run})
}

func start(ctx context.Context, rt *runtime.Runtime) error {
	r := rt.Router
	if err := r.HandleFunc("POST", "/", "", hash); err != nil {
		return err
	}
	// A real hang: the handler ignores its context.
	if err := r.HandleFunc("GET", "/", "hang", func(w http.ResponseWriter, req *http.Request) { select {} }); err != nil {
		return err
	}
	ok := func(w http.ResponseWriter, req *http.Request) { fmt.Fprintln(w, "ok") }
	if err := r.HandleFunc("GET", "/", "client-required", ok); err != nil {
		return err
	}
	if err := r.HandleFunc("GET", "/", "server-required", ok); err != nil {
		return err
	}
	files, err := rest.Files("", "", nil)
	if err != nil {
		return err
	}
	return r.Route(rest.Route{Method: "GET", Base: "/", Expr: "(.*)", Name: "files", Handler: files})
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
			} else {
				rt.Logs.Facility("notice").Log().Msg("configuration reloaded")
			}
		}
	}
}

// hash answers the djb2 hash of the body, read readsize bytes at a time
// with delay seconds between reads.
func hash(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	readsize := 32768
	if v := q.Get("readsize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			rest.Error(w, http.StatusBadRequest, "readsize %q is not a positive integer", v)
			return
		}
		readsize = n
	}
	var delay time.Duration
	if v := q.Get("delay"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			rest.Error(w, http.StatusBadRequest, "delay %q is not a number of seconds", v)
			return
		}
		delay = time.Duration(f * float64(time.Second))
	}
	h := uint32(5381)
	buf := make([]byte, readsize)
	for {
		n, err := r.Body.Read(buf)
		for _, c := range buf[:n] {
			h = h*33 + uint32(c)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rest.Error(w, http.StatusBadRequest, "read body: %v", err)
			return
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
	}
	fmt.Fprintf(w, "HASH %d\n", h)
}
