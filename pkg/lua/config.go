package lua

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

// common holds the keys lua_general and lua_web share.
type common struct {
	directory     string
	preloads      []string
	interruptTime time.Duration
}

// parseCommon takes the shared keys out of cfg (a copy) and reports the
// ones it does not know through rest.
func parseCommon(module string, cfg map[string]string, rest func(k, v string) error) (common, error) {
	var c common
	var errs []string
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := cfg[k]
		var err error
		switch {
		case k == "directory":
			c.directory = v
		case k == "cpath", k == "Cpreloads", k == "Cpreload":
			// C modules cannot load into gopher-lua; the keys libmtev
			// configurations carry are accepted and have no effect.
		case k == "preloads":
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					c.preloads = append(c.preloads, p)
				}
			}
		case k == "interrupt_time":
			var f float64
			if f, err = config.ParseFloat(v); err == nil && f <= 0 {
				err = fmt.Errorf("must be positive seconds")
			}
			c.interruptTime = time.Duration(f * float64(time.Second))
		case k == "interrupt_mode":
			if v != "error" {
				err = fmt.Errorf("%q: only \"error\" is supported (gopher-lua cannot preempt)", v)
			}
		case k == "gc_full", k == "gc_step", k == "gc_stepmul", k == "gc_pause":
			// Lua values live in Go's heap: Go's collector frees them.
			_, err = config.ParseInt(v)
		default:
			err = rest(k, v)
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", k, err))
		}
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%w: %s: %s", ErrConfig, module, strings.Join(errs, "; "))
	}
	return c, nil
}

// luaPath turns libmtev's directory value into package.path: a directory
// becomes DIR/?.lua;DIR/?/init.lua, a value holding '?' is kept, and
// {package.path} stands for the default path.
func luaPath(dir string) string {
	if dir == "" {
		return ""
	}
	var parts []string
	for _, p := range strings.Split(dir, ";") {
		switch {
		case p == "":
		case strings.Contains(p, "?"), strings.Contains(p, "{package.path}"):
			parts = append(parts, p)
		default:
			parts = append(parts, filepath.Join(p, "?.lua"), filepath.Join(p, "?", "init.lua"))
		}
	}
	return strings.Join(parts, ";")
}

// errExit is where tragedy_terminates ends the process by default.
var errExit = func(code int) { os.Exit(code) }
