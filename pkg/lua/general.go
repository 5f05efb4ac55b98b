package lua

import (
	"context"
	"fmt"
	"io"
	"sync"

	glua "github.com/yuin/gopher-lua"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

// General is libmtev's lua_general: at Init it requires lua_module and
// runs lua_function in a coroutine on a loop of the default pool, or on
// every loop with concurrent, one Lua state per loop.
type General struct {
	// Set before Init by an embedding program (the lua command); the
	// zero values suit a module host.
	Stdout io.Writer                                        // print(); nil: os.Stdout
	Args   []string                                         // the global arg table
	Exit   func(int)                                        // os.exit(n) and tragedy_terminates; nil: os.Exit
	Done   func(loop int, results []glua.LValue, err error) // each run's end, on its loop
	Shared *Shared                                          // nil: the process-wide store

	module, function string
	concurrent       bool
	tragedy          bool
	common           common

	mu     sync.Mutex
	states []*State
}

// Config reads the <config> hash: directory, lua_module, lua_function,
// concurrent, tragedy_terminates, preloads, interrupt_time, interrupt_mode,
// and libmtev's keys that have no effect here (cpath, Cpreloads, gc_*).
func (g *General) Config(cfg map[string]string) error {
	c, err := parseCommon("lua_general", cfg, func(k, v string) error {
		switch k {
		case "lua_module":
			g.module = v
		case "lua_function":
			g.function = v
		case "concurrent":
			g.concurrent = v == "on" || v == "true"
		case "tragedy_terminates":
			g.tragedy = v == "true" || v == "yes"
		default:
			return fmt.Errorf("unknown key")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if g.module == "" || g.function == "" {
		return fmt.Errorf("%w: lua_general: lua_module and lua_function are required", ErrConfig)
	}
	g.common = c
	return nil
}

// Init makes the states and starts the function on their loops.
func (g *General) Init(ctx context.Context, h *Host) error {
	if h == nil || h.Eventer == nil {
		return fmt.Errorf("lua: lua_general: init: no eventer")
	}
	pool := h.Eventer.Default()
	loops := []*eventer.Loop{pool.Loop(0)}
	if g.concurrent {
		loops = pool.Loops()
	}
	logs := h.Logs
	if logs == nil {
		logs = log.New()
	}
	exit := g.Exit
	if exit == nil {
		exit = errExit
	}
	var states []*State
	for _, l := range loops {
		s, err := NewState(Options{
			Name:     g.module,
			Loop:     l,
			Path:     luaPath(g.common.directory),
			Logs:     logs,
			Config:   h.Config,
			Shared:   g.Shared,
			Deadline: g.common.interruptTime,
			OnStall:  h.Report,
			Stdout:   g.Stdout,
			Args:     g.Args,
			Exit:     g.Exit,
		})
		if err != nil {
			for _, s := range states {
				s.Close()
			}
			return err
		}
		states = append(states, s)
	}
	g.mu.Lock()
	g.states = states
	g.mu.Unlock()
	for _, s := range states {
		s := s
		idx := s.Loop().Index()
		err := s.Post(func() {
			preload(s, g.common.preloads, func(err error) {
				if err != nil {
					g.finish(s, idx, nil, err, exit)
					return
				}
				s.Require(g.module, func(mod glua.LValue, err error) {
					if err != nil {
						g.finish(s, idx, nil, err, exit)
						return
					}
					fn, err := s.Function(g.module, mod, g.function)
					if err != nil {
						g.finish(s, idx, nil, err, exit)
						return
					}
					s.Spawn(fn, nil, func(v []glua.LValue, err error) { g.finish(s, idx, v, err, exit) })
				})
			})
		})
		if err != nil {
			return fmt.Errorf("lua: lua_general: init: %w", err)
		}
	}
	return nil
}

// preload requires each module in turn, then calls done.
func preload(s *State, mods []string, done func(error)) {
	if len(mods) == 0 {
		done(nil)
		return
	}
	s.Require(mods[0], func(_ glua.LValue, err error) {
		if err != nil {
			done(err)
			return
		}
		preload(s, mods[1:], done)
	})
}

func (g *General) finish(s *State, idx int, v []glua.LValue, err error, exit func(int)) {
	if err != nil && !isExit(err) {
		s.errs.Printf("lua_general %s.%s: %v", g.module, g.function, err)
	}
	if g.Done != nil {
		g.Done(idx, v, err)
	}
	if err != nil && !isExit(err) && g.tragedy {
		s.errs.Printf("unrecoverable run-time error; terminating")
		exit(255)
	}
}

// PostInit does nothing: the function started at Init.
func (g *General) PostInit(ctx context.Context, h *Host) error { return nil }

// States returns the running states, one per loop used.
func (g *General) States() []*State {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*State(nil), g.states...)
}

// Close closes the states. Coroutines still waiting never resume.
func (g *General) Close() {
	for _, s := range g.States() {
		s.Close()
	}
}
