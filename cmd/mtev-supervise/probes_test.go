package main

import (
	"context"
	"encoding/json"
	"github.com/mtev-supervise/mtev-supervise/internal/testport"
	"regexp"
	"strconv"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mtev-supervise/mtev-supervise/internal/scripttest"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// freeport VAR: set VAR to a TCP port of 127.0.0.1 that was free a moment
// ago, for a child to listen on and a probe to reach.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	ps, err := testport.Free(1)
	ts.Check(err)
	ts.Setenv(args[0], strconv.Itoa(ps[0]))
}

// waitstat SERVICE REGEXP: wait until the JSON status of SERVICE
// matches REGEXP (with !, until it does not).
func cmdWaitStatus(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: waitstat SERVICE REGEXP")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	var last []byte
	ok := scripttest.Poll(func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := watchdog.Control(ctx, ts.Getenv("MTEV_STATE_DIR"), args[0], "status")
		if err != nil {
			return false
		}
		last, _ = json.Marshal(st)
		return re.Match(last) != neg
	})
	if !ok {
		ts.Fatalf("waitstat %s %q: not met within %v; last status: %s", args[0], args[1], scripttest.WaitLimit, last)
	}
}
