package module

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
)

// PostInitHook is libmtev's dso_post_init: it runs once every module's
// PostInit has returned; ABORT fails Load with ErrPostInitHook.
var PostInitHook = hook.New[*Set]("dso_post_init", "every module has run post_init; ABORT fails the start").
	Describe(func(s *Set) any { return s.List() })

// Stage names a lifecycle stage in errors: onload, config, init,
// post_init.
type Stage string

// The lifecycle stages, in order.
const (
	StageOnload   Stage = "onload"
	StageConfig   Stage = "config"
	StageInit     Stage = "init"
	StagePostInit Stage = "post_init"
)

// StageError is a failure of one module at one stage.
type StageError struct {
	Module string
	Image  string
	Stage  Stage
	Pos    config.Pos // of the module's <generic>, or of the key a KeyError names
	Err    error
}

func (e *StageError) Error() string {
	return fmt.Sprintf("%s: module %s (%s): %s: %v", e.Pos, e.Module, e.Image, e.Stage, e.Err)
}

func (e *StageError) Unwrap() []error { return []error{ErrStage, e.Err} }

// Instance is a loaded module.
type Instance struct {
	Spec Spec
	// Module is the compiled-in module, nil for one in another process.
	Module Generic
	host   *Host
	proc   *process // nil for a compiled-in module
	inited bool     // Init was called: Close closes it
}

// Info describes a loaded module for listings (/capa.json's "modules").
type Info struct {
	Name  string `json:"name"`
	Image string `json:"image"`
	Type  string `json:"type"`           // "generic", as libmtev
	Kind  string `json:"kind"`           // "compiled-in" or "process"
	PID   int    `json:"pid,omitempty"`  // a process module's current process
	Up    bool   `json:"up"`             // false while a process module restarts
	Path  string `json:"path,omitempty"` // a process module's executable
	Runs  int    `json:"runs,omitempty"` // processes started so far
	// HookErrors counts hook calls into a module process that failed or
	// got no answer within hook_timeout; HookSkipped those answered
	// CONTINUE without asking (the module was down, or slow since its
	// last heartbeat).
	HookErrors  uint64 `json:"hook_errors,omitempty"`
	HookSkipped uint64 `json:"hook_skipped,omitempty"`
}

// Set is the loaded modules of an application.
type Set struct {
	mu   sync.Mutex // guards list after Start returned
	list []*Instance
}

// Load reads the <modules> section of cfg and brings every module up in
// libmtev's order: for each module in document order onload, config and
// init; then post_init for each; then PostInitHook. The first failure
// stops the start: the error (a *StageError, or a config error with
// file:line) names the module and the stage, and modules in other
// processes already started are stopped. host is the template of each
// module's Host (its Name is set per instance).
func Load(ctx context.Context, cfg *config.Config, host Host) (*Set, error) {
	specs, err := Specs(cfg)
	if err != nil {
		return nil, err
	}
	return Start(ctx, specs, host)
}

// Start brings up the modules of specs as Load does.
func Start(ctx context.Context, specs []Spec, host Host) (s *Set, err error) {
	s = &Set{}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	for _, sp := range specs {
		h := host
		h.Name = sp.Name
		in := &Instance{Spec: sp, host: &h}
		s.list = append(s.list, in)
		if sp.Path != "" {
			sp.Process.fill()
			in.Spec = sp
			in.proc = newProcess(sp, in.host)
			if err := in.proc.start(ctx); err != nil {
				return s, err
			}
			continue
		}
		onload, ok := lookup(sp.Image)
		if !ok {
			return s, stageErr(sp, StageOnload, fmt.Errorf("%w: %s is not compiled in", ErrUnknownImage, sp.Image))
		}
		if in.Module, err = onload(); err != nil {
			return s, stageErr(sp, StageOnload, err)
		}
		if in.Module == nil {
			return s, stageErr(sp, StageOnload, errors.New("onload returned no module"))
		}
		if err := in.Module.Config(sp.Config); err != nil {
			return s, stageErr(sp, StageConfig, err)
		}
		in.inited = true
		if err := in.Module.Init(ctx, in.host); err != nil {
			return s, stageErr(sp, StageInit, err)
		}
	}
	for _, in := range s.list {
		if in.proc != nil {
			err = in.proc.postInit()
		} else {
			err = in.Module.PostInit(ctx, in.host)
		}
		if err != nil {
			return s, stageErr(in.Spec, StagePostInit, err)
		}
	}
	if PostInitHook.Invoke(s) == hook.Abort {
		return s, fmt.Errorf("module: start: %w", ErrPostInitHook)
	}
	for _, in := range s.list {
		if in.proc != nil {
			in.proc.watch()
		}
	}
	return s, nil
}

// stageErr places err: at the key's line for a KeyError, else at the
// module's <generic>.
func stageErr(sp Spec, st Stage, err error) error {
	pos := sp.Pos
	var ke *KeyError
	if errors.As(err, &ke) {
		if p, ok := sp.keyPos[ke.Key]; ok {
			pos = p
		}
	}
	return &StageError{Module: sp.Name, Image: sp.Image, Stage: st, Pos: pos, Err: err}
}

// List describes the loaded modules in load order.
func (s *Set) List() []Info {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	list := s.list
	s.mu.Unlock()
	out := make([]Info, 0, len(list))
	for _, in := range list {
		i := Info{Name: in.Spec.Name, Image: in.Spec.Image, Type: "generic", Kind: "compiled-in", Up: true}
		if in.proc != nil {
			i.Kind, i.Path = "process", in.Spec.Path
			in.proc.status(&i)
		}
		out = append(out, i)
	}
	return out
}

// Instance returns the loaded module named name, or nil.
func (s *Set) Instance(name string) *Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.list {
		if in.Spec.Name == name {
			return in
		}
	}
	return nil
}

// Close stops the modules in reverse load order: a module process is
// stopped (its watcher first, so it is not restarted) and a compiled-in
// module whose Init was called and that implements io.Closer is closed. It returns the errors of
// those Close calls. Close is idempotent.
func (s *Set) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	s.mu.Lock()
	list := s.list
	s.list = nil
	s.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		in := list[i]
		switch {
		case in.proc != nil:
			in.proc.stop()
		case in.inited:
			if c, ok := in.Module.(io.Closer); ok {
				if err := c.Close(); err != nil {
					errs = append(errs, fmt.Errorf("module: %s: close: %w", in.Spec.Name, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Show writes the `show modules` console listing to w: one line per
// module in load order, with a module process's state.
func (s *Set) Show(w io.Writer) error {
	list := s.List()
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no modules")
		return err
	}
	for _, i := range list {
		var err error
		if i.Kind == "process" {
			state := fmt.Sprintf("pid %d", i.PID)
			if !i.Up {
				state = "restarting"
			}
			_, err = fmt.Fprintf(w, "%s: %s (%s, %s, started %d times, hook calls failed %d, skipped %d)\n", i.Name, i.Image, i.Kind, state, i.Runs, i.HookErrors, i.HookSkipped)
		} else {
			_, err = fmt.Fprintf(w, "%s: %s (%s)\n", i.Name, i.Image, i.Kind)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
