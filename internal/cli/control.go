package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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
		fs := newFlagSet(env, op, op+" [--name NAME] [--state-dir DIR] [--json]")
		name := fs.String("name", "", "service name (default: the only service running in the state directory)")
		dirFlag := fs.String("state-dir", "", "state directory (default: $MTEV_STATE_DIR, else $XDG_STATE_HOME/mtev-supervise)")
		asJSON := fs.Bool("json", false, "machine-readable output")
		timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the supervisor's answer")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usageError("unexpected argument %q", fs.Arg(0))
		}
		dir, err := stateDir(env, *dirFlag)
		if err != nil {
			return err
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
}
