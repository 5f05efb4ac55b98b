package cli

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// `traces top` keeps services apart by default: the same crash of two
// services is two rows, one with --across-services. Stack-less incidents
// of different programs never share a fingerprint.
func TestTracesTopPerService(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	a := crashRec(t, now.Add(-time.Hour), 100)
	b := crashRec(t, now.Add(-time.Minute), 200)
	b.Service = "billing"
	exit := func(service string, command ...string) *trace.Record {
		r := &trace.Record{Service: service, Time: now, Reason: trace.ReasonExit, PID: 9, Exit: &trace.Exit{Code: intPtr(1)}, Command: command}
		r.Fingerprint = trace.Fingerprint(r)
		return r
	}
	shell, python, shell2 := exit("loop", "sh", "-c", "exit 1"), exit("script", "/usr/bin/python3", "job.py"), exit("other", "/bin/sh", "other.sh")
	if shell.Fingerprint == python.Fingerprint {
		t.Error("exit 1 of sh and of python3 share a fingerprint")
	}
	if shell.Fingerprint != shell2.Fingerprint {
		t.Error("exit 1 of sh with other arguments has another fingerprint")
	}
	tracesAppend(t, dir, a, b)
	rows := func(args ...string) []topRow {
		code, out, _ := tracesRun(context.Background(), dir, append([]string{"traces", "top", "--json"}, args...)...)
		var rows []topRow
		if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil {
			t.Fatalf("top --json %v: %d %v\n%s", args, code, err, out)
		}
		return rows
	}
	if r := rows(); len(r) != 2 || r[0].Count != 1 || len(r[0].Services) != 1 {
		t.Errorf("top: want one row per service, got %+v", r)
	}
	if r := rows("--across-services"); len(r) != 1 || r[0].Count != 2 || len(r[0].Services) != 2 {
		t.Errorf("top --across-services: want one row for both, got %+v", r)
	}
}
