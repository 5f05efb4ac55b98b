package module

import (
	"context"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
)

var benchInProcess = hook.New[testValue]("bench_module_in_process", "")
var benchByName = hook.New[testValue]("bench_module_by_name", "")

// BenchmarkModuleHook is one hook invocation answered by a module in
// another process (a JSON value over go-plugin's net/rpc and back),
// beside the same function attached in process, typed and by name.
func BenchmarkModuleHook(b *testing.B) {
	answer := func(v testValue) hook.Result {
		if v.Cmd == "echo" {
			return hook.Done
		}
		return hook.Continue
	}
	benchInProcess.Register("bench", answer)
	// The module process's own function, attached in process by name.
	if err := hook.AttachJSON("bench_module_by_name", "bench", (&testPlugin{}).Hooks()["test_module_point"]); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	pluginScript(b, dir)
	cfg := writeConfig(b, dir, `<generic image="./test-module" name="bench"/>
`)
	set, err := Load(context.Background(), cfg, Host{})
	if err != nil {
		b.Fatal(err)
	}
	defer set.Close()
	v := testValue{Cmd: "echo", N: 1}
	for _, c := range []struct {
		name string
		p    *hook.Point[testValue]
	}{
		{"base-in-process", benchInProcess},
		{"base-in-process-json", benchByName},
		{"process-round-trip", testPoint},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if c.p.Invoke(v) != hook.Done {
					b.Fatal("not answered DONE")
				}
			}
		})
	}
}
