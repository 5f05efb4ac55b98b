package lua

import (
	"context"
	"net/http"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

// Host is what the module host gives a Lua module at Init and PostInit: the
// shape of module.Host (pkg/module), declared here so that this package
// does not depend on the module registry. The runtime copies one into the
// other.
type Host struct {
	// Name of the module instance.
	Name string
	// Eventer runs the Lua states; required.
	Eventer *eventer.System
	// Logs receives mtev.log and the module's own errors; nil: a fresh
	// graph writing to stderr.
	Logs *log.Graph
	// Config answers mtev.conf_get_*; nil: those return nil.
	Config *config.Config
	// Handle mounts lua_web's routes (libmtev routing: method, base prefix,
	// regular expression on the rest of the path). Nil without HTTP.
	Handle func(method, base, expr string, h http.Handler) error
	// Report tells the supervisor that a Lua state ran past its deadline.
	// It must not block. Nil when unsupervised.
	Report func(Stall)
}

// Stall is a Lua state interrupted for running past its deadline, as
// module.Stall: Source is "lua", Name the script (module), Detail the
// interruption with file:line. Labels are the pprof labels of the loop
// goroutine that ran it. Hard is always false: the state is interrupted,
// the process is not killed.
type Stall struct {
	Source, Name, Detail string
	Elapsed, Deadline    time.Duration
	Labels               map[string]string
	PID                  int
	Hard                 bool
}

// Generic is the module.Generic interface that lua_general and lua_web
// implement.
type Generic interface {
	Config(cfg map[string]string) error
	Init(ctx context.Context, h *Host) error
	PostInit(ctx context.Context, h *Host) error
}

var (
	_ Generic = (*General)(nil)
	_ Generic = (*Web)(nil)
)
