package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/beevik/etree"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

func init() {
	Register(&Command{
		Name:    "config",
		Summary: "check, show or document a configuration file",
		Run:     runConfig,
	})
}

const configSynopsis = `config check FILE | config show [--raw | --resolved] FILE [PATH] | config doc

  check  load FILE with its includes and backing stores and validate every
         declared section; problems are printed as file:line: message and
         the exit status is 2
  show   print the merged document (includes resolved), or the elements
         PATH selects (etree path syntax, e.g. /app/logs/log); with
         --resolved, as the service sees it: {{ENV:...}} interpolated and
         elements whose require_env fails left out (listed on stderr)
  doc    print the reference of every declared section as Markdown`

func runConfig(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		fs := newFlagSet(env, "config", configSynopsis)
		fs.Usage()
		return usageError("config needs a sub-command: check, show or doc")
	}
	switch args[0] {
	case "check":
		return configCheck(env, args[1:])
	case "show":
		return configShow(env, args[1:])
	case "doc":
		return configDoc(env, args[1:])
	case "-h", "--help", "help":
		newFlagSet(env, "config", configSynopsis).Usage()
		return nil
	}
	return usageError("unknown config sub-command %q (want check, show or doc)", args[0])
}

func configCheck(env *Env, args []string) error {
	fs := newFlagSet(env, "config check", "config check FILE")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usageError("config check needs exactly one FILE")
	}
	file := fs.Arg(0)
	cfg, err := config.Load(file, config.Options{NoWriteBack: true, Env: lookupEnv(env), Sections: config.Registered()})
	if err != nil {
		probs := config.Problems(err)
		for _, p := range probs {
			fmt.Fprintln(env.Stderr, p)
		}
		return &StatusError{Code: ExitUsage, Err: fmt.Errorf("%s: %d problem(s)", file, len(probs))}
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%d file(s))\n", file, len(cfg.Files()))
	return nil
}

func configShow(env *Env, args []string) error {
	fs := newFlagSet(env, "config show", "config show [--raw | --resolved] FILE [PATH]")
	raw := fs.Bool("raw", false, "keep <include> elements instead of splicing in their content")
	resolved := fs.Bool("resolved", false, "show values as the service sees them: {{ENV:...}} interpolated, elements whose require_env fails left out (each named on stderr with its file:line)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return usageError("config show needs FILE and an optional PATH")
	}
	if *raw && *resolved {
		return usageError("config show: --raw and --resolved do not go together")
	}
	cfg, err := config.Load(fs.Arg(0), config.Options{NoWriteBack: true, Env: lookupEnv(env)})
	if err != nil {
		return &StatusError{Code: ExitUsage, Err: err}
	}
	nodes := []config.Node{cfg.Root()}
	if fs.NArg() == 2 {
		nodes, err = cfg.FindAll(fs.Arg(1))
		if err != nil {
			return usageError("%v", err)
		}
		if *resolved {
			if err := leftOut(env, cfg, fs.Arg(1), len(nodes) == 0); err != nil {
				return err
			}
		}
		if len(nodes) == 0 {
			return &StatusError{Code: ExitError, Err: fmt.Errorf("%s selects nothing", fs.Arg(1))}
		}
	}
	var b strings.Builder
	for _, n := range nodes {
		doc := etree.NewDocument()
		switch {
		case *resolved:
			el, omitted, err := n.Resolved()
			if err != nil {
				return &StatusError{Code: ExitUsage, Err: err}
			}
			for _, o := range omitted {
				fmt.Fprintln(env.Stderr, o)
			}
			doc.SetRoot(el)
		case *raw:
			doc.SetRoot(n.MergedRaw())
		default:
			doc.SetRoot(n.Merged())
		}
		doc.Indent(2)
		if len(nodes) > 1 {
			fmt.Fprintf(&b, "<!-- %s -->\n", n.Pos())
		}
		s, err := doc.WriteToString()
		if err != nil {
			return err
		}
		b.WriteString(s)
	}
	_, err = fmt.Fprint(env.Stdout, b.String())
	return err
}

// leftOut names on stderr the elements path selects that the environment
// switches off; when it selects nothing else (none), the first one's
// require_env is the error, with its file:line.
func leftOut(env *Env, cfg *config.Config, path string, none bool) error {
	inactive, err := cfg.Inactive(path)
	if err != nil || len(inactive) == 0 {
		return nil
	}
	if !none {
		for _, o := range inactive {
			fmt.Fprintln(env.Stderr, o)
		}
		return nil
	}
	o := inactive[0]
	return &StatusError{Code: ExitUsage, Err: &config.Error{Pos: o.Pos, Err: config.ErrEnv,
		Msg: fmt.Sprintf("%s is left out: require_env=%q: %s", path, o.Require, o.Why)}}
}

func configDoc(env *Env, args []string) error {
	fs := newFlagSet(env, "config doc", "config doc")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return usageError("config doc takes no arguments")
	}
	return config.Markdown(env.Stdout, config.Registered()...)
}

// lookupEnv adapts the command's environment for require_env and
// {{ENV:...}} interpolation.
func lookupEnv(env *Env) config.Environment {
	if env.LookupEnv != nil {
		return env.LookupEnv
	}
	if env.Getenv == nil {
		return nil
	}
	return func(k string) (string, bool) {
		v := env.Getenv(k)
		return v, v != ""
	}
}
