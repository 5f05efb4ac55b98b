package config_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

var watchdogSection = config.Section{
	Path: "watchdog",
	Doc:  "How the supervisor watches its child.",
	Element: config.Element{
		Attrs: []config.Attr{
			{Name: "timeout", Type: config.TypeDuration, Default: "10s", Doc: "Hard stall deadline."},
			{Name: "policy", Type: config.TypeEnum, Enum: []string{"always", "on-failure", "never"}, Default: "on-failure"},
		},
	},
}

func Example() {
	dir, _ := os.MkdirTemp("", "config-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.conf")
	_ = os.WriteFile(path, []byte(`<app><watchdog timeout="5s"/><port>{{ENV:8080:{EXAMPLE_PORT}}}</port></app>`), 0o644)

	cfg, err := config.Load(path, config.Options{Sections: []config.Section{watchdogSection}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cfg.Close()

	wd, _ := cfg.Section(watchdogSection)
	fmt.Println(wd.Duration("@timeout"), wd.String("@policy"))

	port, _ := cfg.Int("/app/port", 0)
	fmt.Println(port)

	cancel := cfg.Subscribe(func(changed []string) { fmt.Println("changed:", changed) })
	defer cancel()
	_ = cfg.Set("/app/watchdog/@timeout", "2s")
	_ = cfg.Flush()
	data, _ := os.ReadFile(path)
	fmt.Println(string(data))
	// Output:
	// 5s on-failure
	// 8080
	// changed: [/app/watchdog]
	// <app><watchdog timeout="2s"/><port>{{ENV:8080:{EXAMPLE_PORT}}}</port></app>
}
