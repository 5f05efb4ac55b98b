package runtime

import (
	"context"

	"github.com/mtev-supervise/mtev-supervise/pkg/lua"
	"github.com/mtev-supervise/mtev-supervise/pkg/module"
)

// Embedded Lua is a module, as in libmtev: <generic image="lua_general">
// runs a script on the event loops, <generic image="lua_web"> serves REST
// routes written in Lua. Both are compiled into every program that links
// the runtime.
func init() {
	module.Register("lua_general", func() (module.Generic, error) { return &luaModule{m: &lua.General{}}, nil })
	module.Register("lua_web", func() (module.Generic, error) { return &luaModule{m: &lua.Web{}}, nil })
}

// luaModule adapts a Lua module to the module registry: the host it gets
// is the module host, with Lua's stalls reported through it.
type luaModule struct {
	m interface {
		lua.Generic
		Close()
	}
}

func luaHost(h *module.Host) *lua.Host {
	lh := &lua.Host{Name: h.Name, Eventer: h.Eventer, Logs: h.Logs, Config: h.Config, Handle: h.Handle}
	if report := h.Report; report != nil {
		lh.Report = func(s lua.Stall) { report(module.Stall(s)) }
	}
	return lh
}

func (l *luaModule) Config(cfg map[string]string) error { return l.m.Config(cfg) }
func (l *luaModule) Init(ctx context.Context, h *module.Host) error {
	return l.m.Init(ctx, luaHost(h))
}
func (l *luaModule) PostInit(ctx context.Context, h *module.Host) error {
	return l.m.PostInit(ctx, luaHost(h))
}

// Close stops the module's Lua states; it runs before the eventer stops.
func (l *luaModule) Close() error { l.m.Close(); return nil }
