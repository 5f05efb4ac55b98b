package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

func init() {
	Register(&Command{Name: "status", Summary: "show the state of supervised services", Run: controlCmd("status")})
	Register(&Command{Name: "restart", Summary: "restart a supervised service's child gracefully", Run: controlCmd("restart")})
	Register(&Command{Name: "stop", Summary: "stop a supervised service and its supervisor", Run: controlCmd("stop")})
}

func controlCmd(op string) func(context.Context, *Env, []string) error {
	return func(ctx context.Context, env *Env, args []string) error {
		synopsis := op + " [NAME] [--name NAME] [--state-dir DIR] [--json]"
		if op != "status" {
			synopsis = op + " [NAME] [--name NAME] [--state-dir DIR] [--json] [--no-wait]"
		}
		fs := newFlagSet(env, op, synopsis)
		name := fs.String("name", "", "service name (default: the only service running in the state directory)")
		dirFlag := fs.String("state-dir", "", "state directory (default: $MTEV_STATE_DIR, else $XDG_STATE_HOME/mtev-supervise)")
		asJSON := fs.Bool("json", false, "machine-readable output")
		timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the supervisor's answer")
		var noWait bool
		var waitFor time.Duration
		if op != "status" {
			fs.BoolVar(&noWait, "no-wait", false, "return once the supervisor has the request, without waiting for the outcome")
			fs.DurationVar(&waitFor, "wait", 0, "how long to wait for the outcome (default: the service's --stop-timeout plus 10s)")
		}
		// NAME may come first or last, as --name does.
		var named string
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			named, args = args[0], args[1:]
		}
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if named == "" && fs.NArg() == 1 {
			named = fs.Arg(0)
		} else if fs.NArg() > 0 {
			return usageError("unexpected argument %q", fs.Arg(0))
		}
		if named != "" {
			if *name != "" && *name != named {
				return usageError("two names: %q and --name %q", named, *name)
			}
			*name = named
		}
		dir, err := stateDir(env, *dirFlag)
		if err != nil {
			return err
		}
		// Services of a running `up` are acted on through it (see up.go).
		if handled, err := fleetOp(ctx, env, dir, op, *name, *asJSON, *timeout, waitFor, noWait); handled {
			return err
		}
		if op == "start" {
			return fmt.Errorf("%s: %w", *name, errNoFleet)
		}
		names := []string{*name}
		if *name == "" {
			names, err = watchdog.Services(dir)
			if err != nil {
				return err
			}
			switch {
			case len(names) == 0:
				return fmt.Errorf("%w in %s", watchdog.ErrNotRunning, dir)
			case len(names) > 1 && op != "status":
				return usageError("several services run in %s (%s): name one with --name", dir, strings.Join(names, ", "))
			}
		}
		if op != "status" && !noWait {
			if len(names) != 1 {
				return usageError("name one service with --name")
			}
			return controlAndWait(ctx, env, dir, names[0], op, *timeout, waitFor, *asJSON)
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		var all []*watchdog.StatusInfo
		for _, n := range names {
			st, err := watchdog.Control(ctx, dir, n, op)
			if err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
			if st != nil {
				all = append(all, st)
			}
		}
		if op != "status" {
			if *asJSON {
				return json.NewEncoder(env.Stdout).Encode(map[string]any{"ok": true, "op": op, "services": names})
			}
			fmt.Fprintf(env.Stdout, "%s: %s requested\n", strings.Join(names, ", "), op)
			return nil
		}
		if *asJSON {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			if *name != "" {
				return enc.Encode(all[0])
			}
			return enc.Encode(all)
		}
		for _, st := range all {
			writeStatus(env.Stdout, st)
		}
		return nil
	}
}

func writeStatus(w io.Writer, st *watchdog.StatusInfo) {
	fmt.Fprintf(w, "%s: %s", st.Service, st.State)
	if st.PID != 0 {
		fmt.Fprintf(w, ", pid %d, up %v", st.PID, (time.Duration(st.UptimeMS) * time.Millisecond).Round(time.Millisecond))
	}
	if st.NextStartInMS > 0 {
		fmt.Fprintf(w, ", next start in %v", time.Duration(st.NextStartInMS)*time.Millisecond)
	}
	fmt.Fprintf(w, ", restarts %d", st.Restarts)
	if st.LastExit != nil {
		fmt.Fprintf(w, ", last exit: %s", st.LastExit)
	}
	fmt.Fprintln(w)
	if st.NotifyStatus != "" {
		fmt.Fprintf(w, "  status: %s\n", st.NotifyStatus)
	}
	fmt.Fprintf(w, "  supervisor pid %d, command %q\n", st.SupervisorPID, st.Command)
	if st.Containment != "" {
		fmt.Fprintf(w, "  containment: %s\n", st.Containment)
	}
	for _, h := range st.Hearts {
		fmt.Fprintf(w, "  heart#%d %-20s %-8s tid %-7d last beat %v ago (timeout %v)\n", h.Slot, h.Name, h.State, h.ThreadID,
			time.Duration(h.AgeMS)*time.Millisecond, time.Duration(h.TimeoutMS)*time.Millisecond)
	}
	for _, l := range st.Sockets {
		fmt.Fprintf(w, "  socket: %s\n", l)
	}
	if len(st.Stored) > 0 {
		fmt.Fprintf(w, "  stored descriptors: %s\n", strings.Join(st.Stored, ", "))
	}
	writeProbes(w, st.Probes) // probes.go
}

// controlAndWait sends stop or restart and waits for its outcome: for
// stop, until the supervisor has exited (its child and the child's tree
// are gone by then); for restart, until a new child runs. It prints the
// outcome.
func controlAndWait(ctx context.Context, env *Env, dir, name, op string, timeout, wait time.Duration, asJSON bool) error {
	ask := func(op string) (*watchdog.StatusInfo, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return watchdog.Control(ctx, dir, name, op)
	}
	before, err := ask("status")
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if wait <= 0 {
		wait = time.Duration(before.StopTimeoutMS)*time.Millisecond + 10*time.Second
	}
	if _, err := ask(op); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	deadline := time.Now().Add(wait)
	outcome := map[string]any{"ok": true, "op": op, "service": name}
	var text string
	for d := time.Millisecond; ; d = min(2*d, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s requested, but no outcome within %v (see mtev-supervise status)", name, op, wait)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		st, err := ask("status")
		if op == "stop" {
			if err != nil && errors.Is(err, watchdog.ErrNotRunning) && supervisorGone(before.SupervisorPID) {
				text = fmt.Sprintf("%s: stopped (supervisor pid %d and child pid %d are gone)", name, before.SupervisorPID, before.PID)
				outcome["supervisor_pid"], outcome["pid"] = before.SupervisorPID, before.PID
				break
			}
		} else if err == nil && st.StartCount > before.StartCount && st.PID != 0 && st.State != "stopping" {
			if before.PID == 0 {
				// Asked during a backoff: no child ran, the wait was cut short.
				text = fmt.Sprintf("%s: started at once instead of after the backoff: new pid %d", name, st.PID)
			} else {
				text = fmt.Sprintf("%s: restarted: pid %d ended (%s), new pid %d", name, before.PID, st.LastExit, st.PID)
			}
			outcome["old_pid"], outcome["pid"], outcome["last_exit"] = before.PID, st.PID, st.LastExit
			break
		} else if err != nil && errors.Is(err, watchdog.ErrNotRunning) {
			return fmt.Errorf("%s: the supervisor ended during the restart", name)
		}
		time.Sleep(d)
	}
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(outcome)
	}
	fmt.Fprintln(env.Stdout, text)
	return nil
}

// supervisorGone reports whether the process pid has exited (a zombie
// counts: it runs no more code).
func supervisorGone(pid int) bool {
	if pid <= 0 {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'Z'
}
