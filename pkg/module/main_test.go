package module

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
	"github.com/mtev-supervise/mtev-supervise/pkg/module/plugin"
)

// pluginEnv makes the test binary serve testPlugin: the tests run it as a
// module executable (through a wrapper script that sets it).
const pluginEnv = "MTEV_MODULE_TEST_PLUGIN"

func TestMain(m *testing.M) {
	switch os.Getenv(pluginEnv) {
	case "1":
		plugin.Serve(&testPlugin{})
		return
	case "v99":
		// A module built against another protocol version.
		plugin.Handshake.ProtocolVersion = 99
		plugin.Serve(&testPlugin{})
		return
	}
	os.Exit(m.Run())
}

// testValue is the value of testPoint.
type testValue struct {
	Cmd string `json:"cmd"`
	N   int    `json:"n"`
}

var testPoint = hook.New[testValue]("test_module_point", "a point the test module process attaches to")

// testPlugin is the module the test binary serves. Its hook answers DONE
// to "echo", crashes the process on "crash" and never returns on "hang".
// Config key fail=config|init|post_init makes that stage fail;
// fail=hooks names a hook point no one declared.
type testPlugin struct{ fail string }

func (p *testPlugin) Config(cfg map[string]string) error {
	p.fail = cfg["fail"]
	if p.fail == "config" {
		return &plugin.KeyError{Key: "fail", Err: errors.New("refused on purpose")}
	}
	return nil
}

func (p *testPlugin) Init(name string) error {
	if p.fail == "init" {
		return fmt.Errorf("init of %s refused on purpose", name)
	}
	return nil
}

func (p *testPlugin) PostInit() error {
	if p.fail == "post_init" {
		return errors.New("post_init refused on purpose")
	}
	return nil
}

func (p *testPlugin) Hooks() map[string]func([]byte) hook.Result {
	if p.fail == "hooks" {
		return map[string]func([]byte) hook.Result{"no_such_point": func([]byte) hook.Result { return hook.Continue }}
	}
	return map[string]func([]byte) hook.Result{
		"test_module_point": func(b []byte) hook.Result {
			var v testValue
			if err := json.Unmarshal(b, &v); err != nil {
				return hook.Abort
			}
			switch v.Cmd {
			case "crash":
				go panic(fmt.Sprintf("test module crash %d", v.N))
				select {}
			case "hang":
				select {}
			case "env":
				// Nothing ties the module to the supervisor.
				if os.Getenv("NOTIFY_SOCKET") != "" || os.Getenv("MTEV_HEARTS_FD") != "" || os.Getenv("MTEV_MODULE_TEST_KEPT") != "kept" {
					return hook.Abort
				}
			}
			return hook.Done
		},
	}
}
