// Command echo is an example of a module that runs as a separate
// executable. Build it and name it in the host's configuration:
//
//	go build -o /opt/app/modules/echo ./examples/modules/echo
//
//	<modules directory="/opt/app/modules">
//	  <generic image="echo" name="echo"><config><drop>password</drop></config></generic>
//	</modules>
//
// With the key drop set it attaches to mtev_log_line and drops (ABORT)
// every log line whose message contains that text. It attaches to
// mtev_conf_reload and prints the changed paths to its stderr, which the
// host logs to notice/module/echo. The key crash_on=TEXT makes a log
// message containing TEXT crash the process, to watch the host report
// and restart it.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/module/plugin"
)

type echo struct {
	name          string
	drop, crashOn string
}

func (e *echo) Config(cfg map[string]string) error {
	for k := range cfg {
		if k != "drop" && k != "crash_on" {
			return &plugin.KeyError{Key: k, Err: fmt.Errorf("unknown key (known: drop, crash_on)")}
		}
	}
	e.drop, e.crashOn = cfg["drop"], cfg["crash_on"]
	return nil
}

func (e *echo) Init(name string) error { e.name = name; return nil }

func (e *echo) PostInit() error {
	fmt.Fprintf(os.Stderr, "echo module %s up in process %d\n", e.name, os.Getpid())
	return nil
}

func (e *echo) Hooks() map[string]func([]byte) hook.Result {
	hooks := map[string]func([]byte) hook.Result{
		"mtev_conf_reload": func(b []byte) hook.Result {
			var v struct{ Changed []string }
			if json.Unmarshal(b, &v) == nil {
				fmt.Fprintf(os.Stderr, "configuration reloaded: %s\n", strings.Join(v.Changed, " "))
			}
			return hook.Continue
		},
	}
	if e.drop != "" || e.crashOn != "" {
		hooks["mtev_log_line"] = func(b []byte) hook.Result {
			var v struct{ Line struct{ Message string } }
			if json.Unmarshal(b, &v) != nil {
				return hook.Continue
			}
			if e.crashOn != "" && strings.Contains(v.Line.Message, e.crashOn) {
				panic("echo: asked to crash by a log line: " + v.Line.Message)
			}
			if e.drop != "" && strings.Contains(v.Line.Message, e.drop) {
				return hook.Abort
			}
			return hook.Continue
		}
	}
	return hooks
}

func main() { plugin.Serve(&echo{}) }
