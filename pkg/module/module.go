package module

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/module/plugin"
)

// Generic is a module compiled into the binary: libmtev's generic module.
// Its methods run in lifecycle order on the goroutine that calls Load.
type Generic interface {
	// Config receives the module's <config> hash (ancestor <config>
	// blocks merged, deeper keys winning). Returning a *KeyError points
	// the message at the key's line.
	Config(cfg map[string]string) error
	// Init runs after Config, before any module's PostInit.
	Init(ctx context.Context, h *Host) error
	// PostInit runs once every module has been initialized.
	PostInit(ctx context.Context, h *Host) error
}

// KeyError is a Config error about one key of the hash; Load reports it
// at the file and line of that key.
type KeyError = plugin.KeyError

// Host is what a module gets from the application: one per module
// instance.
type Host struct {
	Name    string // instance name
	Eventer *eventer.System
	Logs    *log.Graph
	Config  *config.Config
	// Handle mounts an HTTP handler (libmtev's method, base and anchored
	// expression); nil without HTTP.
	Handle func(method, base, expr string, h http.Handler) error
	// Report tells the supervisor about a stall of something the module
	// (or, for a module in another process, the host) watches; nil when
	// unsupervised. It is called before the stalled process is killed,
	// so a capture of Stall.PID must be taken before Report returns.
	Report func(Stall)
}

// Stall is a unit of work seen hanging or dying.
type Stall struct {
	Source   string // "module" for a module process
	Name     string // the module instance
	Detail   string
	Elapsed  time.Duration
	Deadline time.Duration
	Labels   map[string]string
	PID      int  // a process to capture, 0 for none
	Hard     bool // escalate: kill and restart the service
}

// Sentinel errors; test with errors.Is.
var (
	// ErrUnknownImage: an image is neither compiled in nor an executable
	// found on the module search path.
	ErrUnknownImage = errors.New("unknown module image")
	// ErrDuplicate: two <generic> elements have the same name.
	ErrDuplicate = errors.New("duplicate module")
	// ErrStage: a lifecycle stage failed (the error names the module and
	// the stage).
	ErrStage = errors.New("module stage failed")
	// ErrPostInitHook: a dso_post_init hook function returned ABORT.
	ErrPostInitHook = errors.New("dso_post_init aborted")
)

var (
	regMu    sync.Mutex
	registry = map[string]func() (Generic, error){}
)

// Register makes a compiled-in module available under image, the name
// <generic image="..."> uses. Call it from an init function. onload runs
// once per configured instance (libmtev's onload) and returns the
// module. Register panics on an empty image, a nil onload or a duplicate:
// programming errors any test catches.
func Register(image string, onload func() (Generic, error)) {
	if image == "" || onload == nil {
		panic("module: register: empty image or nil onload")
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[image]; dup {
		panic(fmt.Sprintf("module: register: duplicate image %q", image))
	}
	registry[image] = onload
}

// Images lists the compiled-in module images, sorted.
func Images() []string {
	regMu.Lock()
	defer regMu.Unlock()
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func lookup(image string) (func() (Generic, error), bool) {
	regMu.Lock()
	defer regMu.Unlock()
	f, ok := registry[image]
	return f, ok
}
