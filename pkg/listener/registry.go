package listener

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

// Server is what a listener type runs on its socket: it serves until
// Shutdown, which stops accepting, drains what is in flight until ctx
// ends, then closes the rest.
type Server interface {
	Serve(ln net.Listener) error
	Shutdown(ctx context.Context) error
}

// Factory makes the server of one configured listener. It validates the
// spec (its Config keys): an error refuses the configuration at start or
// reload, at the listener's file:line.
type Factory func(spec *Spec) (Server, error)

var registry struct {
	mu sync.RWMutex
	m  map[string]Factory
}

// Register adds a listener type under the name the type attribute uses.
// Registering a name again replaces it.
func Register(name string, f Factory) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.m == nil {
		registry.m = map[string]Factory{}
	}
	registry.m[name] = f
}

func lookup(name string) (Factory, bool) {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	f, ok := registry.m[name]
	return f, ok
}

// Types lists the registered listener types.
func Types() []string {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	out := make([]string, 0, len(registry.m))
	for k := range registry.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Accept is invoked for every accepted connection, before its protocol
// sees it: Abort closes the connection.
var Accept = hook.New[net.Conn]("listener_accept", "a connection was accepted; ABORT closes it")

func init() {
	Register("http_rest_api", newHTTP)
	Register("control_dispatch", newDispatch)
}

// HTTPOptions reads the HTTP limits from a listener's <config>:
//
//	idle_timeout      keep-alive idle limit; milliseconds as libmtev, or a
//	                  duration ("90s"); default 60 s
//	header_timeout    time to read a request header (slowloris); default 10 s
//	read_timeout      time to read a whole request; default none
//	max_header_bytes  request header size limit; default 64 KiB (431 above)
//	max_concurrent    requests at once on this listener; 503 above; default none
//	h2c               serve HTTP/2 without TLS (prior knowledge); default off
func HTTPOptions(spec *Spec) (rest.ServerOptions, error) {
	o := rest.ServerOptions{Config: spec.Config}
	dur := func(k string, dst *time.Duration) error {
		v, ok := spec.Config[k]
		if !ok {
			return nil
		}
		if ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && ms >= 0 {
			*dst = time.Duration(ms) * time.Millisecond
			return nil
		}
		d, err := config.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("config %s: %q is not milliseconds or a duration", k, v)
		}
		*dst = d
		return nil
	}
	for k, dst := range map[string]*time.Duration{"idle_timeout": &o.IdleTimeout, "header_timeout": &o.ReadHeaderTimeout, "read_timeout": &o.ReadTimeout} {
		if err := dur(k, dst); err != nil {
			return o, err
		}
	}
	if v, ok := spec.Config["max_header_bytes"]; ok {
		n, err := config.ParseSize(v)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("config max_header_bytes: %q is not a size", v)
		}
		o.MaxHeaderBytes = int(n)
	}
	if v, ok := spec.Config["max_concurrent"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return o, fmt.Errorf("config max_concurrent: %q is not a count", v)
		}
		o.MaxConcurrent = n
	}
	if v, ok := spec.Config["h2c"]; ok {
		b, err := config.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("config h2c: %w", err)
		}
		o.H2C = b
	}
	if spec.TLS != nil {
		o.TLS = spec.TLS.Config()
	}
	return o, nil
}

func newHTTP(spec *Spec) (Server, error) {
	if spec.Router == nil {
		return nil, fmt.Errorf("%s needs a router", spec.Type)
	}
	o, err := HTTPOptions(spec)
	if err != nil {
		return nil, err
	}
	return rest.NewServer(spec.Router, o), nil
}
