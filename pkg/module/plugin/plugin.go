package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/rpc"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
)

// Name is the name the module is dispensed under.
const Name = "module"

// Handshake is the go-plugin handshake of this protocol. The cookie only
// keeps the executable from being run by hand by mistake; it is not a
// security measure.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "MTEV_MODULE_PLUGIN",
	MagicCookieValue: "a7c3f0d2-mtev-module",
}

// Module is what an executable module implements: libmtev's generic
// module lifecycle plus the hook points it attaches to.
type Module interface {
	// Config receives the <config> hash of the module's <generic>
	// element. Returning a *KeyError points the host's message at the
	// key's line in the configuration file.
	Config(cfg map[string]string) error
	// Init runs after Config; name is the module's instance name.
	Init(name string) error
	// PostInit runs once every module of the host has been initialized.
	PostInit() error
	// Hooks names the hook points (hook.Points names, such as
	// "mtev_log_line") to attach to, with the function each runs. The
	// function receives the point's value as JSON. It is asked once per
	// process start, after Config and before Init. A point the host does
	// not declare fails the first start at init.
	Hooks() map[string]func(value []byte) hook.Result
}

// KeyError is a Config error about one key of the hash.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return fmt.Sprintf("key %s: %v", e.Key, e.Err) }
func (e *KeyError) Unwrap() error { return e.Err }

// Serve runs m as a module for the host that started this process, and
// returns only when the host goes away. Call it from main.
func Serve(m Module) {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Logger:          hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Warn, Output: os.Stderr}),
		Plugins:         goplugin.PluginSet{Name: &RPCPlugin{Impl: m}},
	})
}

// RPCPlugin is the go-plugin plugin of this protocol: Impl is served in
// the module process, and Client returns a *Client in the host.
type RPCPlugin struct{ Impl Module }

// Server implements goplugin.Plugin.
func (p *RPCPlugin) Server(*goplugin.MuxBroker) (any, error) {
	s := &server{m: p.Impl}
	return s, nil
}

// Client implements goplugin.Plugin.
func (p *RPCPlugin) Client(_ *goplugin.MuxBroker, c *rpc.Client) (any, error) {
	return &Client{c: c}, nil
}

// Wire types. net/rpc (gob) needs exported fields everywhere.

// DescribeReply answers Describe.
type DescribeReply struct {
	PID   int
	Hooks []string
}

// ConfigReply answers Config: the error of a KeyError is split so the host
// can place it.
type ConfigReply struct {
	Key, Err string
}

// HookArgs is one hook invocation.
type HookArgs struct {
	Point string
	Value []byte
}

// server runs in the module process. mu serializes every call into the
// module and the heartbeat.
type server struct {
	mu      sync.Mutex
	m       Module
	hooks   map[string]func([]byte) hook.Result
	running atomic.Pointer[running] // the call holding mu, for Stacks
}

type running struct {
	call  string
	since time.Time
}

// enter takes mu for a call named call, labelling the goroutine with it
// (pprof label mtev.module.call) so a dump shows which call hangs; the
// returned func leaves.
func (s *server) enter(call string) func() {
	s.mu.Lock()
	s.running.Store(&running{call: call, since: time.Now()})
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("mtev.module.call", call)))
	return func() {
		pprof.SetGoroutineLabels(context.Background())
		s.running.Store(nil)
		s.mu.Unlock()
	}
}

// StacksReply answers Stacks.
type StacksReply struct {
	Running string        // the call in progress, empty between calls
	For     time.Duration // how long it has been running
	Stacks  []byte        // every goroutine, as a Go panic prints them
}

// Stacks answers without taking mu, so a module whose call hangs still
// tells which call it is and where every goroutine stands.
func (s *server) Stacks(_ int, r *StacksReply) error {
	if cur := s.running.Load(); cur != nil {
		r.Running, r.For = cur.call, time.Since(cur.since)
	}
	buf := make([]byte, 1<<20)
	r.Stacks = buf[:runtime.Stack(buf, true)]
	return nil
}

func (s *server) Describe(_ int, r *DescribeReply) error {
	defer s.enter("Hooks")()
	s.hooks = s.m.Hooks()
	r.PID = os.Getpid()
	for name := range s.hooks {
		r.Hooks = append(r.Hooks, name)
	}
	return nil
}

func (s *server) Config(cfg map[string]string, r *ConfigReply) error {
	defer s.enter("Config")()
	if err := s.m.Config(cfg); err != nil {
		var ke *KeyError
		if errors.As(err, &ke) {
			r.Key, r.Err = ke.Key, ke.Err.Error()
		} else {
			r.Err = err.Error()
		}
	}
	return nil
}

func (s *server) Init(name string, _ *int) error {
	defer s.enter("Init")()
	return s.m.Init(name)
}

func (s *server) PostInit(_ int, _ *int) error {
	defer s.enter("PostInit")()
	return s.m.PostInit()
}

func (s *server) Ping(n int, r *int) error {
	defer s.enter("Ping")()
	*r = n
	return nil
}

func (s *server) Hook(a HookArgs, r *int) error {
	defer s.enter("hook " + a.Point)()
	fn := s.hooks[a.Point]
	if fn == nil {
		return fmt.Errorf("plugin: hook %s: not attached", a.Point)
	}
	*r = int(fn(a.Value))
	return nil
}

// ErrTimeout is returned by a Client call that got no answer in time.
var ErrTimeout = errors.New("no answer in time")

// Client is the host's end of a module process connection. Its methods
// are safe for concurrent use; each waits at most its timeout (a call
// still running in the module then finishes there unseen).
type Client struct{ c *rpc.Client }

func (c *Client) call(method string, d time.Duration, args, reply any) error {
	call := c.c.Go("Plugin."+method, args, reply, make(chan *rpc.Call, 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-call.Done:
		if call.Error != nil {
			return fmt.Errorf("plugin: %s: %w", method, call.Error)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("plugin: %s: %w after %v", method, ErrTimeout, d)
	}
}

// Describe asks the module for its process id and hook points.
func (c *Client) Describe(d time.Duration) (DescribeReply, error) {
	var r DescribeReply
	err := c.call("Describe", d, 0, &r)
	return r, err
}

// Config hands the module its hash; a refusal of one key comes back as a
// *KeyError.
func (c *Client) Config(cfg map[string]string, d time.Duration) error {
	var r ConfigReply
	if err := c.call("Config", d, cfg, &r); err != nil {
		return err
	}
	switch {
	case r.Err == "":
		return nil
	case r.Key != "":
		return &KeyError{Key: r.Key, Err: errors.New(r.Err)}
	default:
		return errors.New(r.Err)
	}
}

// Init runs the module's Init.
func (c *Client) Init(name string, d time.Duration) error {
	return c.call("Init", d, name, new(int))
}

// PostInit runs the module's PostInit.
func (c *Client) PostInit(d time.Duration) error {
	return c.call("PostInit", d, 0, new(int))
}

// Ping is the heartbeat: it returns once the module is between calls.
func (c *Client) Ping(d time.Duration) error {
	return c.call("Ping", d, 1, new(int))
}

// Stacks asks the module, even one whose call hangs, which call runs and
// for every goroutine's stack.
func (c *Client) Stacks(d time.Duration) (StacksReply, error) {
	var r StacksReply
	err := c.call("Stacks", d, 0, &r)
	return r, err
}

// Hook invokes the module's function for point with value (JSON).
func (c *Client) Hook(point string, value []byte, d time.Duration) (hook.Result, error) {
	var r int
	if err := c.call("Hook", d, HookArgs{Point: point, Value: value}, &r); err != nil {
		return hook.Continue, err
	}
	return hook.Result(r), nil
}
