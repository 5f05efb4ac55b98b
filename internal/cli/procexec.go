package cli

import (
	"flag"

	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// bindProcFlags binds the flags of the child's process attributes: user,
// group, working directory, umask, env-file and resource limits. They
// become attributes of <run> like every flag; the syntax of umask and the
// limits is checked when they are set, so that a bad value in a file is
// reported with its file:line. Users, groups, the directory and the
// env-file are checked by the supervisor before the first start.
func bindProcFlags(fs *flag.FlagSet, c *watchdog.Config) {
	fs.StringVar(&c.User, "user", "", "run the child as this user (name or uid), with its groups; needs root")
	fs.StringVar(&c.Group, "group", "", "run the child with this group (name or gid) instead of the user's; needs root")
	fs.StringVar(&c.Dir, "dir", "", "working directory of the child (default: the supervisor's)")
	fs.Var(checked{&c.Umask, func(s string) error { _, err := watchdog.ParseUmask(s); return err }}, "umask", "umask of the child, `octal` (e.g. 027; default: the supervisor's)")
	fs.StringVar(&c.EnvFile, "env-file", "", "environment file read at every start: KEY=VALUE lines taken literally, # comments (docker's --env-file format); <env> and the supervisor's own variables win")
	fs.Var(limitFlag(&c.LimitNofile, false), "limit-nofile", "RLIMIT_NOFILE of the child: `N`, SOFT:HARD or infinity")
	fs.Var(limitFlag(&c.LimitCore, true), "limit-core", "RLIMIT_CORE of the child in bytes: `N`, SOFT:HARD or infinity; K, M, G, T suffixes")
	fs.Var(limitFlag(&c.LimitAS, true), "limit-as", "RLIMIT_AS (address space) of the child in bytes: `N`, SOFT:HARD or infinity; K, M, G, T suffixes")
}

// checked is a string flag whose value is checked when set.
type checked struct {
	p     *string
	check func(string) error
}

func (c checked) String() string {
	if c.p == nil {
		return ""
	}
	return *c.p
}

func (c checked) Set(s string) error {
	if s != "" {
		if err := c.check(s); err != nil {
			return err
		}
	}
	*c.p = s
	return nil
}

func limitFlag(p *string, sizes bool) checked {
	return checked{p, func(s string) error { _, err := watchdog.ParseLimit(s, sizes); return err }}
}
