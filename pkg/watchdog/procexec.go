package watchdog

// Process attributes of the child: user, group, working directory, umask,
// environment file and resource limits. They are checked here, in the
// supervisor, before the first start (an unknown user, a missing
// directory, a limit that cannot be granted: a clear error naming the
// attribute), and applied by the trampoline (trampoline.go) between fork
// and exec, where what could not be checked ahead fails with one line on
// the child's stderr and status 127, reported to the supervisor as a start
// failure.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/user"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Limit is one resource limit: Soft and Hard, RLIM_INFINITY for none.
type Limit struct {
	Soft, Hard uint64
}

// Infinity is an unlimited resource limit value.
const Infinity = uint64(unix.RLIM_INFINITY)

// ParseLimit parses a resource limit: "N" (soft and hard), "SOFT:HARD", or
// "infinity" (also "unlimited") for either. With sizes, a number may end
// in K, M, G or T (powers of 1024).
func ParseLimit(s string, sizes bool) (Limit, error) {
	soft, hard, pair := strings.Cut(s, ":")
	a, err := parseLimitValue(soft, sizes)
	if err != nil {
		return Limit{}, err
	}
	if !pair {
		return Limit{Soft: a, Hard: a}, nil
	}
	b, err := parseLimitValue(hard, sizes)
	if err != nil {
		return Limit{}, err
	}
	if a > b {
		return Limit{}, fmt.Errorf("soft limit %s is above hard limit %s", soft, hard)
	}
	return Limit{Soft: a, Hard: b}, nil
}

func parseLimitValue(s string, sizes bool) (uint64, error) {
	switch strings.ToLower(s) {
	case "infinity", "unlimited":
		return Infinity, nil
	case "":
		return 0, errors.New("empty limit")
	}
	mult := uint64(1)
	if sizes {
		switch s[len(s)-1] {
		case 'K', 'k':
			mult = 1 << 10
		case 'M', 'm':
			mult = 1 << 20
		case 'G', 'g':
			mult = 1 << 30
		case 'T', 't':
			mult = 1 << 40
		}
		if mult > 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if sizes {
			return 0, fmt.Errorf("%q: want a number (with K, M, G or T), or infinity", s)
		}
		return 0, fmt.Errorf("%q: want a number or infinity", s)
	}
	if n > math.MaxUint64/mult || n*mult >= Infinity {
		return 0, fmt.Errorf("%q: too large (say infinity)", s)
	}
	return n * mult, nil
}

func (l Limit) String() string {
	v := func(n uint64) string {
		if n == Infinity {
			return "infinity"
		}
		return strconv.FormatUint(n, 10)
	}
	if l.Soft == l.Hard {
		return v(l.Soft)
	}
	return v(l.Soft) + ":" + v(l.Hard)
}

// ParseUmask parses an octal umask such as "027".
func ParseUmask(s string) (int, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return 0, fmt.Errorf("%q: want an octal mask from 000 to 777", s)
	}
	return int(n), nil
}

// procAttrs is what the trampoline applies, resolved from a Config.
type procAttrs struct {
	limits   []rlimit
	umask    int // -1: inherited
	dir      string
	setUser  bool // set groups, gid and uid
	uid, gid int
	groups   []int
	home     string // of User, for HOME (with username for USER, LOGNAME)
	username string
}

type rlimit struct {
	name     string // the attribute, for messages
	resource int
	Limit
}

// empty reports whether nothing needs the trampoline.
func (a *procAttrs) empty() bool {
	return len(a.limits) == 0 && a.umask < 0 && a.dir == "" && !a.setUser
}

// resolveProc checks the process attributes of c and resolves them (users
// and groups looked up, limits parsed). Its errors name the attribute and
// its value.
func resolveProc(c *Config, sentinel error) (*procAttrs, error) {
	a := &procAttrs{umask: -1}
	var errs []error
	bad := func(attr, val string, err error) {
		errs = append(errs, fmt.Errorf("%w: %s %q: %w", sentinel, attr, val, err))
	}
	root := os.Geteuid() == 0
	for _, l := range []struct {
		name, val string
		res       int
		sizes     bool
	}{
		{"limit-nofile", c.LimitNofile, unix.RLIMIT_NOFILE, false},
		{"limit-core", c.LimitCore, unix.RLIMIT_CORE, true},
		{"limit-as", c.LimitAS, unix.RLIMIT_AS, true},
	} {
		if l.val == "" {
			continue
		}
		lim, err := ParseLimit(l.val, l.sizes)
		if err != nil {
			bad(l.name, l.val, err)
			continue
		}
		if err := grantable(l.res, lim, root); err != nil {
			bad(l.name, l.val, err)
			continue
		}
		a.limits = append(a.limits, rlimit{name: l.name, resource: l.res, Limit: lim})
	}
	if c.Umask != "" {
		m, err := ParseUmask(c.Umask)
		if err != nil {
			bad("umask", c.Umask, err)
		}
		a.umask = m
	}
	if c.Dir != "" {
		if fi, err := os.Stat(c.Dir); err != nil {
			bad("dir", c.Dir, unwrapExec(err))
		} else if !fi.IsDir() {
			bad("dir", c.Dir, errors.New("not a directory"))
		} else {
			a.dir = c.Dir
		}
	}
	if c.CoreDumps && c.LimitCore != "" {
		bad("limit-core", c.LimitCore, errors.New("core-dumps sets the core limit already: use one or the other"))
	}
	if c.User != "" || c.Group != "" {
		if err := a.resolveUser(c, root, sentinel); err != nil {
			errs = append(errs, err)
		} else if c.Notify && c.NotifyAccess == NotifyAll && c.otherUser() {
			// Its notify socket is abstract (listenNotify): any local
			// process can reach it, where a socket file reaches only
			// the supervisor's user.
			bad("notify-access", string(c.NotifyAccess), fmt.Errorf("with user %q the notify socket is reachable by every local process: use main or exec", c.User))
		}
	}
	return a, errors.Join(errs...)
}

// grantable says whether the child may be given lim: raising a hard limit
// needs privilege, and the kernel caps open files at fs.nr_open.
func grantable(res int, lim Limit, root bool) error {
	var cur unix.Rlimit
	if err := unix.Getrlimit(res, &cur); err != nil {
		return err
	}
	if !root && lim.Hard > cur.Max {
		return fmt.Errorf("above the hard limit %s, which only root may raise", Limit{cur.Max, cur.Max})
	}
	if res == unix.RLIMIT_NOFILE {
		if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
			if n, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64); err == nil && lim.Hard > n {
				return fmt.Errorf("above the kernel's maximum of %d open files (fs.nr_open)", n)
			}
		}
	}
	return nil
}

// resolveUser looks up User and Group. The groups are those of a login:
// the user's primary group (or Group) and its supplementary groups.
func (a *procAttrs) resolveUser(c *Config, root bool, sentinel error) error {
	uid, gid := os.Geteuid(), os.Getegid()
	var groups []int
	if c.User != "" {
		u, err := lookupUser(c.User)
		if err != nil {
			return fmt.Errorf("%w: user %q: %w", sentinel, c.User, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		a.home, a.username = u.HomeDir, u.Username
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				if n, err := strconv.Atoi(id); err == nil {
					groups = append(groups, n)
				}
			}
		}
	}
	if c.Group != "" {
		g, err := lookupGroup(c.Group)
		if err != nil {
			return fmt.Errorf("%w: group %q: %w", sentinel, c.Group, err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if !contains(groups, gid) {
		groups = append([]int{gid}, groups...)
	}
	if uid == os.Geteuid() && gid == os.Getegid() && c.User == "" {
		return nil // our own group: nothing to change
	}
	if !root {
		if uid != os.Geteuid() {
			return fmt.Errorf("%w: user %q: running as another user needs root (the supervisor runs as uid %d)", sentinel, c.User, os.Geteuid())
		}
		if gid != os.Getegid() {
			return fmt.Errorf("%w: group %q: running as another group needs root (the supervisor runs as gid %d)", sentinel, c.Group, os.Getegid())
		}
		// The user is ourselves: nothing to change, and no privilege
		// to change it with.
		return nil
	}
	a.setUser, a.uid, a.gid, a.groups = true, uid, gid, groups
	return nil
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// lookupUser finds a user by name, or by number when it is one.
func lookupUser(s string) (*user.User, error) {
	u, err := user.Lookup(s)
	if err == nil {
		return u, nil
	}
	if _, nerr := strconv.Atoi(s); nerr == nil {
		if u, err := user.LookupId(s); err == nil {
			return u, nil
		}
		// A numeric uid with no entry: allowed, as with setpriv.
		return &user.User{Uid: s, Gid: s, Username: s, HomeDir: "/"}, nil
	}
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		return nil, errors.New("no such user")
	}
	return nil, err
}

func lookupGroup(s string) (*user.Group, error) {
	g, err := user.LookupGroup(s)
	if err == nil {
		return g, nil
	}
	if _, nerr := strconv.Atoi(s); nerr == nil {
		if g, err := user.LookupGroupId(s); err == nil {
			return g, nil
		}
		return &user.Group{Gid: s, Name: s}, nil
	}
	var unknown user.UnknownGroupError
	if errors.As(err, &unknown) {
		return nil, errors.New("no such group")
	}
	return nil, err
}

// hasProcAttrs reports whether any process attribute is set.
func (c *Config) hasProcAttrs() bool {
	return c.User != "" || c.Group != "" || c.Umask != "" || c.EnvFile != "" || c.Dir != "" ||
		c.LimitNofile != "" || c.LimitCore != "" || c.LimitAS != ""
}

// noAttrs is the value of a config without process attributes.
var noAttrs = &procAttrs{umask: -1}

// procAttrs resolves the process attributes for a start, and the
// environment they add (the env-file is read again each time).
func (s *Supervisor) procAttrs() (*procAttrs, []string, error) {
	if !s.cfg.hasProcAttrs() {
		return noAttrs, nil, nil
	}
	a, err := resolveProc(&s.cfg, ErrStart)
	if err != nil {
		return nil, nil, err
	}
	env, err := a.procEnv(&s.cfg, func(k string) string { return lookupEnv(s.sys.environ(), k) })
	if err != nil {
		return nil, nil, err
	}
	return a, env, nil
}

// procEnv is the environment the attributes add: HOME, USER and LOGNAME
// of User, then the env-file's variables, read again at every start.
func (a *procAttrs) procEnv(c *Config, getenv func(string) string) ([]string, error) {
	var env []string
	if a.username != "" {
		env = append(env, "HOME="+a.home, "USER="+a.username, "LOGNAME="+a.username)
	}
	if c.EnvFile != "" {
		vars, err := ReadEnvFile(c.EnvFile, getenv)
		if err != nil {
			return nil, fmt.Errorf("%w: env-file: %w", ErrStart, err)
		}
		env = append(env, vars...)
	}
	return env, nil
}

// ReadEnvFile reads an environment file in docker's --env-file format:
// one KEY=VALUE per line, the value taken literally to the end of the line
// (quotes and spaces included); a line with a KEY alone takes its value
// from getenv and is skipped when that is empty; blank lines and lines
// whose first non-blank character is '#' are ignored. A bad line is an
// error naming the file and line.
func ReadEnvFile(path string, getenv func(string) string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		line = strings.TrimSuffix(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, hasVal := strings.Cut(line, "=")
		if !hasVal {
			key = strings.TrimRight(key, " \t")
		}
		if !validEnvName(key) {
			return nil, fmt.Errorf("%s:%d: %q is not a variable name (want KEY=VALUE, letters, digits and '_')", path, n, key)
		}
		if strings.IndexByte(val, 0) >= 0 {
			return nil, fmt.Errorf("%s:%d: %s: a NUL byte in the value", path, n, key)
		}
		if !hasVal {
			v := getenv(key)
			if v == "" {
				continue
			}
			val = v
		}
		env = append(env, key+"="+val)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return env, nil
}

func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// otherUser reports whether the child runs under a uid other than ours.
func (c *Config) otherUser() bool {
	if c.User == "" {
		return false
	}
	u, err := lookupUser(c.User)
	return err != nil || u.Uid != strconv.Itoa(os.Geteuid())
}
