package runtime

import (
	"fmt"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/listener"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

// EventerSection declares the <eventer> section of an application's
// configuration: libmtev's key/value <config> block, read by
// eventer.ParseConfig (concurrency, loop_<pool>=concurrency[,timeout],
// jobq_<queue>=..., default_queue_threads, ...).
var EventerSection = config.Section{
	Path: "eventer",
	Doc:  "Event loop pools and job queues. Keys of the `<config>` block as in libmtev: `concurrency`, `loop_<pool>=concurrency[,timeout]`, `jobq_<queue>=concurrency[,min[,max[,safety[,backlog[,lifo]]]]]`, `default_queue_threads`, `default_jobq_ordering`, `show_loop_callbacks_threshold`, `show_jobq_callbacks_threshold`.",
	Element: config.Element{
		Children: []config.Element{{
			Name: "config",
			Doc:  "Key/value settings, one child element per key.",
			Open: true,
		}},
	},
}

func init() { config.Register(EventerSection) }

// loadConfig reads the application's configuration file, validating the
// sections the runtime reads, and applies <eventer> over app.Eventer.
func loadConfig(app *App, rt *Runtime) error {
	c, err := config.Load(app.ConfigFile, config.Options{Sections: []config.Section{EventerSection, log.ConfigSection, listener.Section, rest.Section}})
	if err != nil {
		return err
	}
	rt.Config = c
	v, err := c.Section(EventerSection)
	if err != nil {
		return err
	}
	if n := v.Node(); n.Valid() {
		hash, err := n.Hash()
		if err != nil {
			return err
		}
		if len(hash) > 0 {
			opts, err := eventer.ParseConfig(hash)
			if err != nil {
				return fmt.Errorf("%s: %w", n.Pos(), err)
			}
			mergeEventer(&app.Eventer, opts)
		}
	}
	return rt.Logs.ConfigureFrom(c)
}

// mergeEventer sets in dst every option the file set.
func mergeEventer(dst *eventer.Options, src eventer.Options) {
	if src.Concurrency != 0 {
		dst.Concurrency = src.Concurrency
	}
	if src.Timeout != 0 {
		dst.Timeout = src.Timeout
	}
	if src.DefaultQueueThreads != 0 {
		dst.DefaultQueueThreads = src.DefaultQueueThreads
	}
	if src.LoopSlowThreshold != 0 {
		dst.LoopSlowThreshold = src.LoopSlowThreshold
	}
	if src.QueueSlowThreshold != 0 {
		dst.QueueSlowThreshold = src.QueueSlowThreshold
	}
	if src.NoFileLimit != 0 {
		dst.NoFileLimit = src.NoFileLimit
	}
	dst.LIFO = dst.LIFO || src.LIFO
	dst.Debugging = dst.Debugging || src.Debugging
	dst.Pools = append(dst.Pools, src.Pools...)
	dst.Queues = append(dst.Queues, src.Queues...)
}

// Reload re-reads the configuration file: a bad file is refused (the error
// names file and line) and the running configuration stays. On success the
// <logs> section is applied again and the changed element paths are
// returned; subscribers of rt.Config are told too. Pools and queues keep
// the shape they started with.
func (rt *Runtime) Reload() ([]string, error) {
	if rt.Config == nil {
		return nil, fmt.Errorf("runtime: reload: no configuration file")
	}
	changed, err := rt.Config.Reload()
	if err != nil {
		return nil, err
	}
	if err := rt.Logs.ConfigureFrom(rt.Config); err != nil {
		return changed, err
	}
	if err := rt.reloadHTTP(); err != nil {
		return changed, err
	}
	return changed, nil
}
