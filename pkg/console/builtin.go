package console

import (
	"errors"
	"fmt"
	"io"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Runtime is what the commands acting on the process need; the runtime
// (pkg/runtime) fills it. A nil func makes its command answer that it is not
// available here.
type Runtime struct {
	// Hearts lists the hearts as the supervisor sees them.
	Hearts func() ([]Heart, error)
	// Incidents returns the newest n incidents of this service from the
	// supervisor's journal, newest first.
	Incidents func(n int) ([]Incident, error)
	// Crash crashes the process from loop index of the default pool.
	Crash func(loop int) error
	// Hang makes loop index of pool hang forever.
	Hang func(pool string, loop int) error
	// Restart asks the supervisor to restart the process (not a crash).
	Restart func() error
	// Shutdown asks the supervisor to stop the process and itself, with
	// status 0.
	Shutdown func() error
	// Reload re-reads the configuration file ("configure reload"); nil
	// falls back to Config.Reload.
	Reload func() ([]string, error)
}

// Heart is one heart, for "show hearts".
type Heart struct {
	Slot    int           `json:"slot"`
	Name    string        `json:"name"`
	State   string        `json:"state"`
	Timeout time.Duration `json:"timeout_ns"`
	Age     time.Duration `json:"age_ns"`
	Beats   uint64        `json:"beats"`
}

// Incident is one journal record, for "show incidents".
type Incident struct {
	ID          string    `json:"id"`
	Time        time.Time `json:"time"`
	Reason      string    `json:"reason"`
	Action      string    `json:"action,omitempty"`
	Exit        string    `json:"exit,omitempty"`
	Heart       string    `json:"heart,omitempty"`
	Culprit     string    `json:"culprit,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
}

// ErrUnavailable is returned by commands whose dependency the server was
// not given.
var ErrUnavailable = errors.New("not available in this process")

func unavailable(what string) error { return fmt.Errorf("console: %s: %w", what, ErrUnavailable) }

func init() {
	Register("show", nil, nil).Describe("show state: version, eventer, log, conf, hearts, incidents")
	Register("show version", showVersion, nil).Describe("build and system information")
	Register("show hearts", showHearts, nil).Describe("the hearts the supervisor watches: name, slot, timeout, age")
	Register("show incidents", showIncidents, nil).Describe("show incidents [N]: the newest N incidents (default 10)")
	Register("crash", crashCmd, nil).Describe("crash [LOOP]: crash the process from a loop of the default pool")
	Register("hang", hangCmd, completePools).Describe("hang [POOL] LOOP: make a loop hang (its heart stops)")
	Register("restart", restartCmd, nil).Describe("have the supervisor restart this process")
	Register("shutdown", shutdownCmd, nil).Describe("stop this process and its supervisor (status 0)")
}

// VersionInfo is what "show version" reports.
type VersionInfo struct {
	BuildSysname string   `json:"build_sysname"`
	BuildMachine string   `json:"build_machine"`
	RunSysname   string   `json:"run_sysname"`
	RunNodename  string   `json:"run_nodename"`
	RunRelease   string   `json:"run_release"`
	RunVersion   string   `json:"run_version"`
	RunMachine   string   `json:"run_machine"`
	Bitwidth     int      `json:"bitwidth"`
	Version      string   `json:"version"`
	GoVersion    string   `json:"go_version"`
	Features     []string `json:"features"`
}

func versionInfo(s *Session) VersionInfo {
	v := VersionInfo{BuildSysname: goruntime.GOOS, BuildMachine: goruntime.GOARCH,
		Bitwidth: strconv.IntSize, Version: s.srv.opts.Version, GoVersion: goruntime.Version(),
		Features: []string{"telnet", "websocket", "json"}}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		v.RunSysname, v.RunNodename = unix.ByteSliceToString(u.Sysname[:]), unix.ByteSliceToString(u.Nodename[:])
		v.RunRelease, v.RunVersion = unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Version[:])
		v.RunMachine = unix.ByteSliceToString(u.Machine[:])
	}
	if v.Version == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			v.Version = bi.Main.Path + " " + bi.Main.Version
		}
	}
	return v
}

func showVersion(s *Session, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("console: show version takes no arguments")
	}
	v := versionInfo(s)
	return s.Output(v, func(w io.Writer) {
		fmt.Fprintf(w, "build sysname:\t%s\nbuild machine:\t%s\n", v.BuildSysname, v.BuildMachine)
		fmt.Fprintf(w, "run sysname:\t%s\nrun nodename:\t%s\nrun release:\t%s\nrun version:\t%s\nrun machine:\t%s\n",
			v.RunSysname, v.RunNodename, v.RunRelease, v.RunVersion, v.RunMachine)
		fmt.Fprintf(w, "bitwidth:\t%d\nversion:\t%s\ngo version:\t%s\n", v.Bitwidth, v.Version, v.GoVersion)
		for _, f := range v.Features {
			fmt.Fprintf(w, "feature:\t%s\n", f)
		}
	})
}

func showHearts(s *Session, args []string) error {
	rt := s.srv.opts.Runtime
	if rt.Hearts == nil {
		return unavailable("show hearts")
	}
	hs, err := rt.Hearts()
	if err != nil {
		return fmt.Errorf("console: show hearts: %w", err)
	}
	if hs == nil {
		hs = []Heart{}
	}
	return s.Output(hs, func(w io.Writer) {
		fmt.Fprintf(w, "%-4s %-24s %-8s %10s %10s %s\n", "slot", "name", "state", "timeout", "age", "beats")
		for _, h := range hs {
			fmt.Fprintf(w, "%-4d %-24s %-8s %10v %10v %d\n", h.Slot, h.Name, h.State, h.Timeout, h.Age.Round(time.Millisecond), h.Beats)
		}
	})
}

func showIncidents(s *Session, args []string) error {
	rt := s.srv.opts.Runtime
	if rt.Incidents == nil {
		return unavailable("show incidents")
	}
	n := 10
	if len(args) > 1 {
		return fmt.Errorf("console: usage: show incidents [N]")
	}
	if len(args) == 1 {
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 1 {
			return fmt.Errorf("console: show incidents: %q is not a positive count", args[0])
		}
		n = v
	}
	is, err := rt.Incidents(n)
	if err != nil {
		return fmt.Errorf("console: show incidents: %w", err)
	}
	if is == nil {
		is = []Incident{}
	}
	return s.Output(is, func(w io.Writer) {
		if len(is) == 0 {
			fmt.Fprintln(w, "no incidents")
		}
		for _, i := range is {
			what := i.Culprit
			if i.Heart != "" {
				what = "heart " + i.Heart + " " + what
			}
			if i.Exit != "" {
				what = i.Exit + " " + what
			}
			fmt.Fprintf(w, "%s %s %-6s %-12s %s\n", i.ID, i.Time.UTC().Format(time.RFC3339), i.Reason, i.Action, strings.TrimSpace(what))
		}
	})
}

func crashCmd(s *Session, args []string) error {
	rt := s.srv.opts.Runtime
	if rt.Crash == nil {
		return unavailable("crash")
	}
	loop := 0
	switch len(args) {
	case 0:
	case 1:
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 0 {
			return fmt.Errorf("console: crash: %q is not a loop number", args[0])
		}
		loop = v
	default:
		return fmt.Errorf("console: usage: crash [LOOP]")
	}
	s.Output(map[string]any{"crashing": true, "loop": loop}, func(w io.Writer) { fmt.Fprintf(w, "crashing from loop %d\n", loop) })
	s.Flush()
	return rt.Crash(loop)
}

func hangCmd(s *Session, args []string) error {
	rt := s.srv.opts.Runtime
	if rt.Hang == nil {
		return unavailable("hang")
	}
	pool, idx := "default", ""
	switch len(args) {
	case 1:
		idx = args[0]
	case 2:
		pool, idx = args[0], args[1]
	default:
		return fmt.Errorf("console: usage: hang [POOL] LOOP")
	}
	loop, err := strconv.Atoi(idx)
	if err != nil || loop < 0 {
		return fmt.Errorf("console: hang: %q is not a loop number", idx)
	}
	if err := rt.Hang(pool, loop); err != nil {
		return err
	}
	return s.Output(map[string]any{"hangs": pool + "/" + strconv.Itoa(loop)}, func(w io.Writer) {
		fmt.Fprintf(w, "loop %s/%d hangs\n", pool, loop)
	})
}

func restartCmd(s *Session, args []string) error {
	rt := s.srv.opts.Runtime
	if rt.Restart == nil {
		return unavailable("restart")
	}
	s.Output(map[string]any{"restarting": true}, func(w io.Writer) { fmt.Fprintln(w, "restarting") })
	s.Flush()
	return rt.Restart()
}

func shutdownCmd(s *Session, args []string) error {
	rt := s.srv.opts.Runtime
	if rt.Shutdown == nil {
		return unavailable("shutdown")
	}
	s.Output(map[string]any{"shutting_down": true}, func(w io.Writer) { fmt.Fprintln(w, "shutting down") })
	s.Flush()
	return rt.Shutdown()
}

func completePools(s *Session, args []string) []string {
	ev := s.srv.opts.Eventer
	if ev == nil || len(args) > 1 {
		return nil
	}
	var out []string
	for _, p := range ev.Pools() {
		out = append(out, p.Name())
	}
	return out
}
