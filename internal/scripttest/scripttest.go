// Package scripttest holds the testscript commands that the end-to-end
// scenarios of the command and of the examples share: waiting for a
// condition with a deadline instead of sleeping.
package scripttest

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// WaitLimit is how long a wait command waits before it fails.
const WaitLimit = 30 * time.Second

// Poll calls cond until it holds or WaitLimit passes, backing off from
// 1 ms to 50 ms between calls.
func Poll(cond func() bool) bool {
	deadline := time.Now().Add(WaitLimit)
	for d := time.Millisecond; ; d = min(2*d, 50*time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(d)
	}
}

// WaitFor is the command `waitfor [-count=N] FILE [PATTERN]`: wait until
// FILE holds a whole line and, with a pattern, until it holds at least N
// (default 1) lines containing it.
func WaitFor(ts *testscript.TestScript, neg bool, args []string) {
	count := 1
	if len(args) > 0 && strings.HasPrefix(args[0], "-count=") {
		n, err := strconv.Atoi(strings.TrimPrefix(args[0], "-count="))
		if err != nil {
			ts.Fatalf("waitfor: bad %s", args[0])
		}
		count, args = n, args[1:]
	}
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitfor [-count=N] FILE [PATTERN]")
	}
	file := ts.MkAbs(args[0])
	ok := Poll(func() bool {
		b, err := os.ReadFile(file)
		if err != nil {
			return false
		}
		if len(args) == 1 {
			// A whole line: the writer may still be writing it.
			return len(b) > 0 && b[len(b)-1] == '\n'
		}
		return strings.Count(string(b), args[1]) >= count
	})
	if ok == neg {
		b, _ := os.ReadFile(file)
		ts.Fatalf("waitfor %s: condition not met within %v; file holds:\n%s", args[0], WaitLimit, b)
	}
}
