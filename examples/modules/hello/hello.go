// Package hello is an example of a module compiled into the binary. An
// application enables it by importing the package (its init registers
// the image "hello") and naming it in its configuration:
//
//	<modules>
//	  <generic image="hello" name="hello"><config><greeting>hi</greeting></config></generic>
//	</modules>
//
// It serves GET /hello/ with its greeting when the host has HTTP, counts
// the lines of the "error" facility through the mtev_log_line hook point,
// and logs to "notice" once every module is up.
package hello

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/module"
)

func init() {
	module.Register("hello", func() (module.Generic, error) { return &Module{}, nil })
}

// Module is the hello module.
type Module struct {
	Greeting string
	errors   atomic.Int64
}

// Config reads the key greeting (required).
func (m *Module) Config(cfg map[string]string) error {
	m.Greeting = cfg["greeting"]
	if m.Greeting == "" {
		return &module.KeyError{Key: "greeting", Err: fmt.Errorf("missing")}
	}
	return nil
}

// Init attaches to mtev_log_line and mounts /hello/.
func (m *Module) Init(_ context.Context, h *module.Host) error {
	log.LineHook.Register("hello:"+h.Name, func(r log.Record) hook.Result {
		if r.Facility == "error" {
			m.errors.Add(1)
		}
		return hook.Continue
	})
	if h.Handle == nil {
		return nil
	}
	return h.Handle(http.MethodGet, "/hello/", `(.*)`, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s (errors logged so far: %d)\n", m.Greeting, m.errors.Load())
	}))
}

// PostInit says hello.
func (m *Module) PostInit(_ context.Context, h *module.Host) error {
	if h.Logs != nil {
		h.Logs.Facility("notice").Log().Str("module", h.Name).Msg(m.Greeting)
	}
	return nil
}

// Errors is how many "error" lines the module has seen.
func (m *Module) Errors() int64 { return m.errors.Load() }
