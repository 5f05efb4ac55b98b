package config

import "github.com/mtev-supervise/mtev-supervise/pkg/hook"

// LoadHook runs when Load or Parse has read and validated a
// configuration, before it is returned. ABORT fails the load with
// ErrAborted (a check of its own that the declared sections cannot
// express). Functions attached by name see {"path","files"}.
var LoadHook = hook.New[*Config]("mtev_conf_load", "a configuration was read and validated; ABORT refuses it").
	Describe(func(c *Config) any { return loadView{Path: c.Path(), Files: c.Files()} })

// Reloaded is the value of ReloadHook.
type Reloaded struct {
	Config  *Config
	Changed []string // element paths added, removed or changed
}

// ReloadHook runs after a successful Reload has replaced the document and
// before subscribers are told; the result is not consulted (the reload
// has happened). Functions attached by name see {"path","changed"}.
var ReloadHook = hook.New[Reloaded]("mtev_conf_reload", "the configuration was reloaded from its files").
	Describe(func(r Reloaded) any { return reloadView{Path: r.Config.Path(), Changed: r.Changed} })

type loadView struct {
	Path  string   `json:"path"`
	Files []string `json:"files"`
}

type reloadView struct {
	Path    string   `json:"path"`
	Changed []string `json:"changed"`
}
