package cli

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

// The <run> section of a configuration file given to `run --config`:
// every flag of `run` is an attribute of the same name, and the command is
// given by <command>, <arg> and <env> children. Flags on the command line
// win over the file. The declaration is made from the flags themselves, so
// the reference (mtev-supervise config doc) cannot drift from them.
//
//	<mtev-supervise>
//	  <run name="web" restart="always" backoff-max="1m" hearts="require">
//	    <command>/usr/local/bin/web</command>
//	    <arg>--port</arg><arg>8080</arg>
//	    <env name="GOMAXPROCS">4</env>
//	  </run>
//	</mtev-supervise>
var runSection = func() config.Section {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f.bind(fs)
	return sectionOf(fs)
}()

func init() { config.Register(runSection) }

// enums are the flags whose values are a fixed set.
var enums = map[string][]string{
	"restart": {"always", "on-failure", "never"},
	"output":  {"plain", "prefix", "json"},
	"hearts":  {"auto", "require", "off"},
}

func sectionOf(fs *flag.FlagSet) config.Section {
	el := config.Element{
		Name: "run",
		Doc:  "A supervised service: the settings of `mtev-supervise run`, one attribute per flag.",
		Children: []config.Element{
			{Name: "command", Type: config.TypeString, Doc: "the program to run (when no command is given on the command line)"},
			{Name: "arg", Type: config.TypeString, Repeated: true, Doc: "one argument of the program, in order"},
			{Name: "env", Type: config.TypeString, Repeated: true, Doc: "an environment variable for the program; its value is the text",
				Attrs: []config.Attr{{Name: "name", Type: config.TypeString, Required: true, Pattern: `[A-Za-z_][A-Za-z0-9_]*`, Doc: "the variable's name"}}},
			listenElement,
		},
	}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" || isRepeated(f) {
			return
		}
		a := config.Attr{Name: f.Name, Type: flagType(f), Default: f.DefValue, Doc: f.Usage}
		if e, ok := enums[f.Name]; ok {
			a.Type, a.Enum = config.TypeEnum, e
		}
		el.Attrs = append(el.Attrs, a)
	})
	return config.Section{Path: "run", Doc: el.Doc, Element: el}
}

func flagType(f *flag.Flag) config.Type {
	switch fmt.Sprintf("%T", f.Value) {
	case "*flag.boolValue":
		return config.TypeBool
	case "*flag.intValue", "*flag.int64Value":
		return config.TypeInt
	case "*flag.durationValue":
		return config.TypeDuration
	}
	return config.TypeString
}

// applyConfig loads path, validates its <run> and <logs> sections, sets
// every flag that the command line did not set from <run>, and, when logs
// is not nil, configures it from <logs>. It returns the command and the
// extra environment the file names.
func applyConfig(path string, fs *flag.FlagSet, logs *log.Graph) (command, env []string, err error) {
	c, err := config.Load(path, config.Options{NoWriteBack: true, Sections: []config.Section{runSection, log.ConfigSection}})
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	defer c.Close()
	if logs != nil {
		if err := logs.ConfigureFrom(c); err != nil {
			return nil, nil, usageError("%v", err)
		}
	}
	vals, err := c.Section(runSection)
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	n := vals.Node()
	if !n.Valid() {
		return nil, nil, usageError("%s: no <run> section", path)
	}
	return applyNode(n, fs)
}

// applyNode sets every flag that the command line did not set from the
// attributes of n (a <run>, or a <service> of `up`), and returns the
// command and the extra environment its children name.
func applyNode(n config.Node, fs *flag.FlagSet) (command, env []string, err error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []string
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := n.Attr(f.Name)
		if !ok || set[f.Name] || f.Name == "config" || isRepeated(f) {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			if isDuration(f) {
				err = errors.New(durationProblem(v))
			}
			errs = append(errs, fmt.Sprintf("%s: %s=%q: %v", n.Pos(), f.Name, v, err))
		}
	})
	if len(errs) > 0 {
		return nil, nil, usageError("%s", strings.Join(errs, "\n"))
	}
	if err := applyListen(n, fs, set); err != nil {
		return nil, nil, err
	}
	for _, ch := range n.Children() {
		switch ch.Tag() {
		case "command":
			command = append([]string{strings.TrimSpace(ch.Text())}, command...)
		case "arg":
			command = append(command, ch.Text())
		case "env":
			name, _ := ch.Attr("name")
			env = append(env, name+"="+ch.Text())
		}
	}
	if len(command) > 0 && command[0] == "" {
		return nil, nil, usageError("%s: <command> is empty", n.Pos())
	}
	if len(command) > 0 && !hasCommand(n) {
		return nil, nil, usageError("%s: <arg> without <command>", n.Pos())
	}
	return command, env, nil
}

func hasCommand(n config.Node) bool {
	for _, ch := range n.Children() {
		if ch.Tag() == "command" {
			return true
		}
	}
	return false
}
