package lua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	glua "github.com/yuin/gopher-lua"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

// MaxBody caps a request body handed to Lua, as libmtev's 1 MiB.
const MaxBody = 1 << 20

// Mount is one lua_web route: mount_<Name>=Module:Method:Base[:Expr].
type Mount struct {
	Name, Module, Method, Base, Expr string
	Pool                             string // loop_assign_<Name>; "" the default pool
	re                               *regexp.Regexp
}

// Web is libmtev's lua_web: Lua modules serving REST routes. Each mount
// calls Module.handler(rest, http) in a coroutine on a loop of its pool
// (one Lua state per loop); the response is sent when the handler returns
// or calls http:flush_end().
type Web struct {
	Shared *Shared // nil: the process-wide store

	mounts  []Mount
	devMode bool
	common  common

	host   *Host
	logs   *log.Graph
	mu     sync.Mutex
	states map[*eventer.Loop]*State
}

// Config reads the <config> hash: mount_<n>, loop_assign_<n>, directory,
// dev_mode, preloads, interrupt_time, interrupt_mode, and libmtev's keys
// that have no effect here (dispatch, cpath, Cpreloads, gc_*).
func (w *Web) Config(cfg map[string]string) error {
	assign := map[string]string{}
	c, err := parseCommon("lua_web", cfg, func(k, v string) error {
		switch {
		case strings.HasPrefix(k, "mount_"):
			m, err := parseMount(strings.TrimPrefix(k, "mount_"), v)
			if err != nil {
				return err
			}
			w.mounts = append(w.mounts, m)
		case strings.HasPrefix(k, "loop_assign_"):
			assign[strings.TrimPrefix(k, "loop_assign_")] = v
		case k == "dev_mode":
			w.devMode = v == "true"
		case k == "dispatch":
			// Documented by libmtev, never read by it.
		default:
			return fmt.Errorf("unknown key")
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := range w.mounts {
		w.mounts[i].Pool = assign[w.mounts[i].Name]
		delete(assign, w.mounts[i].Name)
	}
	for n := range assign {
		return fmt.Errorf("%w: lua_web: loop_assign_%s: no mount_%s", ErrConfig, n, n)
	}
	sort.Slice(w.mounts, func(i, j int) bool { return w.mounts[i].Name < w.mounts[j].Name })
	w.common = c
	return nil
}

// parseMount reads module:METHOD:/base/[:expr]; expr defaults to (.*)$.
func parseMount(name, v string) (Mount, error) {
	parts := strings.SplitN(v, ":", 4)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return Mount{}, fmt.Errorf("%q: want module:METHOD:/base/[:regex]", v)
	}
	m := Mount{Name: name, Module: parts[0], Method: strings.ToUpper(parts[1]), Base: parts[2], Expr: "(.*)$"}
	if len(parts) == 4 && parts[3] != "" {
		m.Expr = parts[3]
	}
	re, err := regexp.Compile("^(?:" + m.Expr + ")")
	if err != nil {
		return Mount{}, fmt.Errorf("%q: %v", m.Expr, err)
	}
	m.re = re
	return m, nil
}

// Mounts returns the configured routes.
func (w *Web) Mounts() []Mount { return append([]Mount(nil), w.mounts...) }

// Init makes one Lua state per loop of each pool a mount uses.
func (w *Web) Init(ctx context.Context, h *Host) error {
	if h == nil || h.Eventer == nil {
		return fmt.Errorf("lua: lua_web: init: no eventer")
	}
	w.host = h
	w.logs = h.Logs
	if w.logs == nil {
		w.logs = log.New()
	}
	w.states = map[*eventer.Loop]*State{}
	for _, m := range w.mounts {
		p, err := w.pool(m)
		if err != nil {
			w.Close()
			return err
		}
		for _, l := range p.Loops() {
			if w.states[l] != nil {
				continue
			}
			s, err := NewState(Options{
				Name:     "lua_web",
				Loop:     l,
				Path:     luaPath(w.common.directory),
				Logs:     w.logs,
				Config:   h.Config,
				Shared:   w.Shared,
				Deadline: w.common.interruptTime,
				OnStall:  h.Report,
			})
			if err != nil {
				w.Close()
				return err
			}
			s.registerWeb()
			w.states[l] = s
		}
	}
	return nil
}

func (w *Web) pool(m Mount) (*eventer.Pool, error) {
	if m.Pool == "" {
		return w.host.Eventer.Default(), nil
	}
	p := w.host.Eventer.Pool(m.Pool)
	if p == nil {
		return nil, fmt.Errorf("%w: lua_web: loop_assign_%s: no pool %q", ErrConfig, m.Name, m.Pool)
	}
	return p, nil
}

// PostInit mounts the routes through Host.Handle.
func (w *Web) PostInit(ctx context.Context, h *Host) error {
	if h.Handle == nil {
		if len(w.mounts) > 0 {
			return fmt.Errorf("lua: lua_web: post_init: no HTTP server to mount %d routes on", len(w.mounts))
		}
		return nil
	}
	for _, m := range w.mounts {
		if err := h.Handle(m.Method, m.Base, m.Expr, w.Handler(m)); err != nil {
			return fmt.Errorf("lua: lua_web: mount_%s: %w", m.Name, err)
		}
	}
	return nil
}

// Close closes every state.
func (w *Web) Close() {
	w.mu.Lock()
	states := w.states
	w.states = nil
	w.mu.Unlock()
	for _, s := range states {
		s.Close()
	}
}

// webCall is one request handed to Lua and the response it builds.
type webCall struct {
	r        *http.Request
	body     []byte
	captures []string

	status  int
	reason  string
	header  http.Header
	out     []byte
	once    sync.Once
	done    chan struct{}
	err     error
	written bool
}

// ended reports whether the response has been handed to the HTTP side;
// later changes are ignored (they would race with the writer).
func (c *webCall) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *webCall) finish(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.done)
	})
}

// Handler returns the http.Handler of mount m: it reads the request,
// runs the Lua handler on a loop of the mount's pool and writes what the
// handler built. Init must have run.
func (w *Web) Handler(m Mount) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p, err := w.pool(m)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		w.mu.Lock()
		s := w.states[p.Next()]
		w.mu.Unlock()
		if s == nil {
			http.Error(rw, "lua_web: not running", http.StatusServiceUnavailable)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
		if err != nil {
			http.Error(rw, "lua_web: reading the request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(body) > MaxBody {
			http.Error(rw, "lua_web: request body over 1 MiB", http.StatusRequestEntityTooLarge)
			return
		}
		c := &webCall{r: r, body: body, header: http.Header{}, done: make(chan struct{}), status: 200}
		rest := strings.TrimPrefix(r.URL.Path, m.Base)
		if sub := m.re.FindStringSubmatch(rest); sub != nil {
			c.captures = sub[1:]
		}
		err = s.Post(func() { w.run(s, m, c) })
		if err != nil {
			http.Error(rw, "lua_web: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		select {
		case <-c.done:
		case <-r.Context().Done():
			return
		}
		if c.err != nil && !c.written {
			var ie *InterruptError
			status := http.StatusInternalServerError
			if errors.As(c.err, &ie) {
				status = http.StatusServiceUnavailable
			}
			http.Error(rw, c.err.Error(), status)
			return
		}
		for k, v := range c.header {
			rw.Header()[k] = v
		}
		if rw.Header().Get("Content-Length") == "" {
			rw.Header().Set("Content-Length", strconv.Itoa(len(c.out)))
		}
		rw.WriteHeader(c.status)
		_, _ = rw.Write(c.out)
	})
}

// run calls module.handler(rest, http) on the loop.
func (w *Web) run(s *State, m Mount, c *webCall) {
	if w.devMode {
		if pkg, ok := s.L.GetGlobal("package").(*glua.LTable); ok {
			if loaded, ok := pkg.RawGetString("loaded").(*glua.LTable); ok {
				loaded.RawSetString(m.Module, glua.LNil)
			}
		}
	}
	call := func(fn *glua.LFunction) {
		restUD := s.L.NewUserData()
		restUD.Value = c
		restUD.Metatable = s.L.GetTypeMetatable("mtev.rest")
		s.SpawnNamed(m.Module, fn, []glua.LValue{restUD, s.newHTTP(c)}, func(_ []glua.LValue, err error) {
			if err != nil {
				s.errs.Printf("lua_web %s %s: %v", m.Method, c.r.URL.Path, err)
			}
			c.finish(err)
		})
	}
	start := func() {
		if fn := s.handlers[m.Module]; fn != nil && !w.devMode {
			call(fn)
			return
		}
		s.Require(m.Module, func(mod glua.LValue, err error) {
			if err != nil {
				c.finish(err)
				return
			}
			fn, err := s.Function(m.Module, mod, "handler")
			if err != nil {
				c.finish(err)
				return
			}
			if s.handlers == nil {
				s.handlers = map[string]*glua.LFunction{}
			}
			s.handlers[m.Module] = fn
			call(fn)
		})
	}
	if len(w.common.preloads) > 0 && !s.preloaded {
		preload(s, w.common.preloads, func(err error) {
			if err != nil {
				c.finish(err)
				return
			}
			s.preloaded = true
			start()
		})
		return
	}
	start()
}

func (s *State) newHTTP(c *webCall) glua.LValue {
	ud := s.L.NewUserData()
	ud.Value = c
	ud.Metatable = s.L.GetTypeMetatable("mtev.http")
	return ud
}

func checkCall(L *glua.LState) *webCall {
	ud := L.CheckUserData(1)
	c, ok := ud.Value.(*webCall)
	if !ok {
		L.ArgError(1, "mtev.http expected")
	}
	return c
}

// registerWeb adds the request/response types of lua_web.
func (s *State) registerWeb() {
	L := s.L
	rest := L.NewTypeMetatable("mtev.rest")
	L.SetField(rest, "__index", L.SetFuncs(L.NewTable(), map[string]glua.LGFunction{
		"http":      func(L *glua.LState) int { L.Push(s.newHTTP(checkCall(L))); return 1 },
		"captures":  luaCaptures,
		"apply_acl": func(L *glua.LState) int { L.Push(glua.LTrue); return 1 },
	}))
	req := L.NewTypeMetatable("mtev.http_request")
	L.SetField(req, "__index", L.SetFuncs(L.NewTable(), map[string]glua.LGFunction{
		"method": func(L *glua.LState) int { L.Push(glua.LString(checkCall(L).r.Method)); return 1 },
		"uri":    func(L *glua.LState) int { L.Push(glua.LString(checkCall(L).r.URL.Path)); return 1 },
		"querystring": func(L *glua.LState) int {
			return pushValues(L, checkCall(L).r.URL.Query(), false)
		},
		"headers": func(L *glua.LState) int {
			return pushValues(L, url.Values(checkCall(L).r.Header), true)
		},
		"payload":  func(L *glua.LState) int { L.Push(glua.LString(checkCall(L).body)); return 1 },
		"captures": luaCaptures,
		"cookie": func(L *glua.LState) int {
			ck, err := checkCall(L).r.Cookie(L.CheckString(2))
			if err != nil {
				L.Push(glua.LNil)
			} else {
				L.Push(glua.LString(ck.Value))
			}
			return 1
		},
	}))
	h := L.NewTypeMetatable("mtev.http")
	L.SetField(h, "__index", L.SetFuncs(L.NewTable(), map[string]glua.LGFunction{
		"request": func(L *glua.LState) int {
			ud := L.NewUserData()
			ud.Value = checkCall(L)
			ud.Metatable = L.GetTypeMetatable("mtev.http_request")
			L.Push(ud)
			return 1
		},
		"status": func(L *glua.LState) int {
			c := checkCall(L)
			code := L.CheckInt(2)
			if c.ended() {
				return 0
			}
			if code < 100 || code > 999 {
				L.ArgError(2, "HTTP status out of range")
			}
			c.status = code
			c.reason = L.OptString(3, "")
			return 0
		},
		"header": func(L *glua.LState) int {
			if c := checkCall(L); !c.ended() {
				c.header.Set(L.CheckString(2), L.CheckString(3))
			}
			return 0
		},
		"write": func(L *glua.LState) int {
			c := checkCall(L)
			data := L.CheckString(2)
			if c.ended() {
				L.Push(glua.LFalse)
				return 1
			}
			c.out = append(c.out, data...)
			L.Push(glua.LTrue)
			return 1
		},
		"json": func(L *glua.LState) int {
			c := checkCall(L)
			text, _, err := encodeJSON(L.CheckAny(2))
			if err != nil {
				L.RaiseError("http:json: %v", err)
			}
			if c.ended() {
				return 0
			}
			if c.header.Get("Content-Type") == "" {
				c.header.Set("Content-Type", "application/json")
			}
			c.out = append(c.out, text...)
			return 0
		},
		"flush":     func(L *glua.LState) int { return 0 },
		"flush_end": func(L *glua.LState) int { checkCall(L).finish(nil); return 0 },
		"option":    func(L *glua.LState) int { L.Push(glua.LTrue); return 1 },
		"url_encode": func(L *glua.LState) int {
			L.Push(glua.LString(url.QueryEscape(L.CheckString(2))))
			return 1
		},
		"url_decode": func(L *glua.LState) int {
			v, err := url.QueryUnescape(L.CheckString(2))
			if err != nil {
				L.Push(glua.LNil)
			} else {
				L.Push(glua.LString(v))
			}
			return 1
		},
	}))
}

func luaCaptures(L *glua.LState) int {
	c := checkCall(L)
	t := L.CreateTable(len(c.captures), 0)
	for _, s := range c.captures {
		t.Append(glua.LString(s))
	}
	L.Push(t)
	return 1
}

// pushValues returns values[name] (the first), or with no name a table of
// every name to its first value. Header names are lower case.
func pushValues(L *glua.LState, values url.Values, header bool) int {
	if L.GetTop() >= 2 {
		name := L.CheckString(2)
		var v string
		var ok bool
		if header {
			vs := http.Header(values).Values(name)
			if ok = len(vs) > 0; ok {
				v = vs[0]
			}
		} else if vs, found := values[name]; found && len(vs) > 0 {
			v, ok = vs[0], true
		}
		if !ok {
			L.Push(glua.LNil)
		} else {
			L.Push(glua.LString(v))
		}
		return 1
	}
	t := L.NewTable()
	for k, vs := range values {
		if len(vs) == 0 {
			continue
		}
		if header {
			k = strings.ToLower(k)
		}
		t.RawSetString(k, glua.LString(vs[0]))
	}
	L.Push(t)
	return 1
}
