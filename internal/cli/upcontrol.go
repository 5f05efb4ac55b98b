package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// liveFleet is one running `up` and its services.
type liveFleet struct {
	Name     string                   `json:"name"`
	Services []watchdog.ServiceStatus `json:"services"`
}

func liveFleets(ctx context.Context, dir string, timeout time.Duration) []liveFleet {
	names, _ := watchdog.Fleets(dir)
	var out []liveFleet
	for _, n := range names {
		c, cancel := context.WithTimeout(ctx, timeout)
		st, err := watchdog.FleetControl(c, dir, n, "status", "")
		cancel()
		if err == nil {
			out = append(out, liveFleet{n, st})
		}
	}
	return out
}

func findService(all []watchdog.ServiceStatus, name string) *watchdog.ServiceStatus {
	for i := range all {
		if all[i].Service == name {
			return &all[i]
		}
	}
	return nil
}

// fleetOp runs status, start, stop or restart through a running `up`
// when one runs in dir and owns the service named (or, without a name,
// when exactly one runs). handled is false when no `up` is concerned: the
// caller then talks to a lone supervisor.
//
// Without a name, stop, start and restart act on every service of the
// `up` (stop: dependents first; the `up` keeps running, stopped services
// stay stopped until start); status lists every service of every `up`,
// then the services of lone supervisors.
func fleetOp(ctx context.Context, env *Env, dir, op, name string, asJSON bool, timeout, wait time.Duration, noWait bool) (handled bool, err error) {
	fleets := liveFleets(ctx, dir, timeout)
	if len(fleets) == 0 {
		return false, nil
	}
	var fl *liveFleet
	for i := range fleets {
		if name == "" || findService(fleets[i].Services, name) != nil {
			fl = &fleets[i]
			break
		}
	}
	if fl == nil {
		return false, nil
	}
	if op == "status" {
		if name != "" {
			st := findService(fl.Services, name)
			if asJSON {
				return true, jsonOut(env.Stdout, st)
			}
			writeFleet(env.Stdout, "", []watchdog.ServiceStatus{*st})
			if st.Detail != nil {
				writeStatus(env.Stdout, st.Detail)
			}
			return true, nil
		}
		return true, fleetStatusAll(ctx, env, dir, fleets, asJSON, timeout)
	}
	if name == "" && len(fleets) > 1 {
		var names []string
		for _, f := range fleets {
			names = append(names, f.Name)
		}
		return true, usageError("several `up` run in %s (%s): name a service", dir, strings.Join(names, ", "))
	}
	before := fl.Services
	if wait <= 0 {
		// Every stop may take its stop timeout, one after the other.
		wait = 10 * time.Second
		for _, s := range before {
			if s.Detail != nil {
				wait += time.Duration(s.Detail.StopTimeoutMS) * time.Millisecond
			} else {
				wait += watchdog.DefaultStopTimeout
			}
		}
	}
	opCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	after, err := watchdog.FleetControl(opCtx, dir, fl.Name, op, name)
	if err != nil {
		return true, err
	}
	what := name
	if what == "" {
		what = "every service of " + fl.Name
	}
	if !noWait && op != "stop" {
		after, err = awaitFleet(opCtx, dir, fl.Name, op, name, before)
		if err != nil {
			return true, fmt.Errorf("%s: %s: %w (see mtev-supervise status)", what, op, err)
		}
	}
	if asJSON {
		return true, json.NewEncoder(env.Stdout).Encode(map[string]any{"ok": true, "op": op, "service": name, "services": after})
	}
	switch {
	case noWait:
		fmt.Fprintf(env.Stdout, "%s: %s requested\n", what, op)
	case op == "stop":
		fmt.Fprintf(env.Stdout, "%s: stopped\n", what)
	default:
		fmt.Fprintf(env.Stdout, "%s: %sed\n", what, strings.TrimSuffix(op, "e"))
	}
	writeFleet(env.Stdout, "", after)
	return true, nil
}

// awaitFleet polls until the services acted on run a child started after
// the request (restart) or run at all (start); a service that ends
// instead is an error.
func awaitFleet(ctx context.Context, dir, fleet, op, name string, before []watchdog.ServiceStatus) ([]watchdog.ServiceStatus, error) {
	for d := time.Millisecond; ; d = min(2*d, 50*time.Millisecond) {
		all, err := watchdog.FleetControl(ctx, dir, fleet, "status", "")
		if err != nil {
			return nil, err
		}
		pending := 0
		for _, s := range all {
			if name != "" && s.Service != name {
				continue
			}
			b := findService(before, s.Service)
			switch s.State {
			case "exited", "gave-up", "failed":
				if name != "" {
					return all, fmt.Errorf("%s ended: %s", s.Service, s.Error)
				}
				continue
			case "stopped":
				if name == "" && op == "restart" {
					continue // it was stopped on request and stays so
				}
			}
			if s.PID == 0 || s.State == "stopping" || s.State == "waiting" && name == "" ||
				op == "restart" && b != nil && b.PID != 0 && s.Starts <= b.Starts {
				pending++
			}
		}
		if pending == 0 {
			return all, nil
		}
		select {
		case <-ctx.Done():
			return all, errors.New("no outcome in time")
		case <-time.After(d):
		}
	}
}

func fleetStatusAll(ctx context.Context, env *Env, dir string, fleets []liveFleet, asJSON bool, timeout time.Duration) error {
	inFleet := map[string]bool{}
	for _, f := range fleets {
		for _, s := range f.Services {
			inFleet[s.Service] = true
		}
	}
	lone, err := watchdog.Services(dir)
	if err != nil {
		return err
	}
	lone = slices.DeleteFunc(lone, func(n string) bool { return inFleet[n] })
	others := []*watchdog.StatusInfo{}
	for _, n := range lone {
		c, cancel := context.WithTimeout(ctx, timeout)
		st, err := watchdog.Control(c, dir, n, "status")
		cancel()
		if err == nil {
			others = append(others, st)
		}
	}
	if asJSON {
		return jsonOut(env.Stdout, map[string]any{"up": fleets, "services": others})
	}
	for _, f := range fleets {
		writeFleet(env.Stdout, f.Name, f.Services)
	}
	for _, st := range others {
		writeStatus(env.Stdout, st)
	}
	return nil
}

func jsonOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeFleet prints one line per service: name, state, pid, starts and
// last incident.
func writeFleet(w io.Writer, fleet string, all []watchdog.ServiceStatus) {
	if fleet != "" {
		fmt.Fprintf(w, "up %s:\n", fleet)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSTATE\tPID\tSTARTS\tLAST INCIDENT\tDEPENDS ON")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, s := range all {
		pid := "-"
		if s.PID != 0 {
			pid = fmt.Sprint(s.PID)
		}
		state := s.State
		if len(s.WaitingFor) > 0 {
			state += " (for " + strings.Join(s.WaitingFor, ",") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Service, state, pid, s.Starts, dash(s.LastIncident), dash(strings.Join(s.Depends, ",")))
	}
	tw.Flush()
}
