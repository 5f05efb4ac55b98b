// Command app is a service with both kinds of module: the compiled-in
// hello module and the echo executable. Build the echo module next to the
// configuration, then run the app:
//
//	go build -o examples/modules/app/modules/echo ./examples/modules/echo
//	MTEV_FOREGROUND=1 go run ./examples/modules/app
//
// Without MTEV_FOREGROUND=1 it supervises itself as every pkg/runtime
// application does.
package main

import (
	"flag"

	_ "github.com/mtev-supervise/mtev-supervise/examples/modules/hello"
	"github.com/mtev-supervise/mtev-supervise/pkg/runtime"
)

func main() {
	cfg := flag.String("c", "examples/modules/app/app.xml", "configuration file")
	flag.Parse()
	runtime.Main(runtime.App{Name: "modules-example", ConfigFile: *cfg})
}
