package main

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mtev-supervise/mtev-supervise/internal/scripttest"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// TestUp runs the scenarios of `mtev-supervise up` in testdata/up: one
// supervisor process running several services of one file.
func TestUp(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "../../testdata/up",
		Setup: func(e *testscript.Env) error {
			e.Setenv("MTEV_STATE_DIR", filepath.Join(e.WorkDir, "state"))
			e.Setenv("HOME", e.WorkDir)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfor": scripttest.WaitFor,
			"sigsup":  cmdSigSup,
			"sigpid":  cmdSigPID,
			"pidgone": cmdPIDGone,
			"upstate": cmdUpState,
		},
	})
}

// upstate SERVICE STATE-REGEXP: wait until the service of the running
// `up` is in a state matching the pattern (the whole state).
func cmdUpState(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: upstate SERVICE STATE-REGEXP")
	}
	re, err := regexp.Compile("^(" + args[1] + ")$")
	ts.Check(err)
	dir := ts.Getenv("MTEV_STATE_DIR")
	var last string
	ok := scripttest.Poll(func() bool {
		names, _ := watchdog.Fleets(dir)
		for _, n := range names {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			all, err := watchdog.FleetControl(ctx, dir, n, "status", "")
			cancel()
			if err != nil {
				continue
			}
			for _, s := range all {
				if s.Service == args[0] {
					last = s.State
					return re.MatchString(s.State)
				}
			}
		}
		return false
	})
	if ok == neg {
		ts.Fatalf("upstate %s: state %q, want %s=%v within %v", args[0], last, args[1], !neg, scripttest.WaitLimit)
	}
}
