package lua_test

import (
	"fmt"
	"os"

	glua "github.com/yuin/gopher-lua"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/lua"
)

// A Lua state on an event loop: one coroutine waits for another, which
// sleeps on the loop first.
func Example() {
	ev, err := eventer.New(eventer.Options{Concurrency: 1})
	if err != nil {
		panic(err)
	}
	if err := ev.Start(); err != nil {
		panic(err)
	}
	defer ev.Stop()
	s, err := lua.NewState(lua.Options{Name: "example", Loop: ev.Default().Loop(0), Stdout: os.Stdout})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	done := make(chan error, 1)
	s.Post(func() {
		s.Load("example.lua", `
			mtev.coroutine_spawn(function()
				mtev.sleep(0.01)
				mtev.notify("ready", "world")
			end)
			local _, who = mtev.waitfor("ready")
			print("hello, " .. who)
			return mtev.tojson({greeted = who}):tostring()`,
			func(v []glua.LValue, err error) {
				if err == nil {
					fmt.Println(v[0])
				}
				done <- err
			})
	})
	if err := <-done; err != nil {
		panic(err)
	}
	// Output:
	// hello, world
	// {"greeted":"world"}
}
