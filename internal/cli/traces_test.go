package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/internal/syncbuf"
	"github.com/mtev-supervise/mtev-supervise/pkg/journal"
	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// tracesRun runs the mtev-supervise command line args with the state
// directory dir in $MTEV_STATE_DIR.
func tracesRun(ctx context.Context, dir string, args ...string) (code int, stdout, stderr string) {
	var out, errOut syncbuf.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Args0: "mtev-supervise",
		Getenv: func(k string) string {
			if k == "MTEV_STATE_DIR" {
				return dir
			}
			return ""
		}}
	code = Run(ctx, env, args)
	return code, out.String(), errOut.String()
}

// tracesAppend appends records to the journal of state directory dir and
// returns their ids.
func tracesAppend(t *testing.T, dir string, recs ...*trace.Record) []uint64 {
	t.Helper()
	w, err := journal.Open(watchdog.JournalDir(dir), journal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var ids []uint64
	for _, r := range recs {
		b, err := trace.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		id, err := w.Append(b)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func intPtr(n int) *int { return &n }

// crashRec is a real crash: the output of a program that wrote a map from
// several goroutines, parsed.
func crashRec(t *testing.T, at time.Time, pid int) *trace.Record {
	t.Helper()
	out, err := os.ReadFile(filepath.Join("..", "..", "pkg", "trace", "testdata", "crash", "mapwrites.txt"))
	if err != nil {
		t.Fatal(err)
	}
	gs, _, err := trace.ParseCrash(out)
	if err != nil {
		t.Fatal(err)
	}
	r := &trace.Record{Service: "api", Time: at, Reason: trace.ReasonCrash, PID: pid, StartCount: 1,
		Exit: &trace.Exit{Code: intPtr(2)}, Goroutines: gs, CrashOutput: string(out), LogTail: []string{"starting"}}
	r.Fingerprint = trace.Fingerprint(r)
	return r
}

func stallRec(at time.Time) *trace.Record {
	r := &trace.Record{Service: "worker", Time: at, Reason: trace.ReasonStall, PID: 7, StartCount: 2,
		Exit:  &trace.Exit{Signal: "SIGKILL"},
		Stall: &trace.Stall{Source: "heart", Stage: "hard", Heart: "e:default/1", AgeMS: 6000, TimeoutMS: 5000}}
	r.Fingerprint = trace.Fingerprint(r)
	return r
}

func exitRec(at time.Time) *trace.Record {
	// Written without a fingerprint: readers compute it.
	return &trace.Record{Service: "api", Time: at, Reason: trace.ReasonExit, PID: 9, StartCount: 3, Exit: &trace.Exit{Code: intPtr(3)}}
}

func TestTracesList(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	crash, stall, exit := crashRec(t, now.Add(-3*time.Hour), 100), stallRec(now.Add(-2*time.Hour)), exitRec(now.Add(-time.Minute))
	tracesAppend(t, dir, crash, stall, exit)
	ctx := context.Background()

	code, out, errOut := tracesRun(ctx, dir, "traces", "list")
	if code != 0 || errOut != "" {
		t.Fatalf("list: %d %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("list output:\n%s", out)
	}
	wants := [][]string{
		{"1", "api", "crash", "status 2", "main.writer", trace.ShortFingerprint(crash.Fingerprint)},
		{"2", "worker", "stall", "signal SIGKILL", "heart e:default/1", trace.ShortFingerprint(stall.Fingerprint)},
		{"3", "api", "exit", "status 3", trace.ShortFingerprint(trace.Fingerprint(exit))},
	}
	for i, w := range wants {
		if !strings.HasPrefix(lines[i+1], w[0]+" ") {
			t.Errorf("line %d = %q, want id %s", i+1, lines[i+1], w[0])
		}
		for _, s := range w[1:] {
			if !strings.Contains(lines[i+1], s) {
				t.Errorf("line %d = %q, want %q in it", i+1, lines[i+1], s)
			}
		}
	}

	code, out, _ = tracesRun(ctx, dir, "traces", "list", "--json")
	var rows []listRow
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil {
		t.Fatalf("list --json: %d %v\n%s", code, err, out)
	}
	if len(rows) != 3 || rows[0].ID != "1" || rows[0].Culprit != "main.writer" || rows[0].Fingerprint != crash.Fingerprint ||
		rows[2].ID != "3" || !strings.HasPrefix(rows[2].Fingerprint, "v2:") {
		t.Errorf("list --json rows: %+v", rows)
	}

	filters := []struct {
		args []string
		ids  []string
	}{
		{[]string{"--reason", "stall"}, []string{"2"}},
		{[]string{"--service", "api"}, []string{"1", "3"}},
		{[]string{"--since", "150m"}, []string{"2", "3"}},
		{[]string{"--since", now.Add(-90 * time.Minute).Format(time.RFC3339)}, []string{"3"}},
		{[]string{"--reason", "crash", "--service", "worker"}, nil},
	}
	for _, f := range filters {
		code, out, _ := tracesRun(ctx, dir, append([]string{"traces", "list", "--json"}, f.args...)...)
		var rows []listRow
		if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil {
			t.Fatalf("list %v: %d %v", f.args, code, err)
		}
		var ids []string
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		if strings.Join(ids, ",") != strings.Join(f.ids, ",") {
			t.Errorf("list %v: ids %v, want %v", f.args, ids, f.ids)
		}
	}
}

func TestTracesShow(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	crash := crashRec(t, now, 100)
	crash.LogTail = nil
	for i := 0; i < 30; i++ {
		crash.LogTail = append(crash.LogTail, "log line "+strings.Repeat("x", i%3)+string(rune('a'+i%26)))
	}
	tracesAppend(t, dir, crash, exitRec(now))
	ctx := context.Background()

	code, out, errOut := tracesRun(ctx, dir, "traces", "show", "1")
	if code != 0 {
		t.Fatalf("show 1: %d %s", code, errOut)
	}
	for _, want := range []string{"incident 1: crash of api", "headline:    fatal error: concurrent map writes",
		"culprit goroutine", "> main.writer", "other goroutines", "fingerprint: " + crash.Fingerprint, "last 20 of 30 lines"} {
		if !strings.Contains(out, want) {
			t.Errorf("show 1 lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "culprit goroutine") > strings.Index(out, "other goroutines") {
		t.Error("culprit not first")
	}
	if _, out, _ := tracesRun(ctx, dir, "traces", "show", "1", "--all"); !strings.Contains(out, "log tail (30 lines)") {
		t.Errorf("show --all:\n%s", out)
	}

	code, out, _ = tracesRun(ctx, dir, "traces", "show", "latest")
	if code != 0 || !strings.Contains(out, "incident 2: exit of api") || !strings.Contains(out, "fingerprint: v2:") {
		t.Errorf("show latest: %d\n%s", code, out)
	}

	code, out, _ = tracesRun(ctx, dir, "traces", "show", "--json", "1")
	rec, err := trace.Decode([]byte(out))
	if code != 0 || err != nil || rec.ID != "1" || rec.Fingerprint != crash.Fingerprint || len(rec.Goroutines) != len(crash.Goroutines) {
		t.Errorf("show --json 1: %d %v %+v", code, err, rec)
	}
}

func TestTracesErrors(t *testing.T) {
	dir := t.TempDir()
	tracesAppend(t, dir, exitRec(time.Now()))
	ctx := context.Background()
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"traces"}, ExitUsage, "missing subcommand"},
		{[]string{"traces", "nope"}, ExitUsage, `unknown subcommand "nope"`},
		{[]string{"traces", "list", "--reason", "boom"}, ExitUsage, `--reason "boom"`},
		{[]string{"traces", "list", "--since", "yesterday"}, ExitUsage, `--since "yesterday"`},
		{[]string{"traces", "top", "--since", "-1h"}, ExitUsage, "negative"},
		{[]string{"traces", "list", "extra"}, ExitUsage, "unexpected argument"},
		{[]string{"traces", "list", "--bogus"}, ExitUsage, "bogus"},
		{[]string{"traces", "show"}, ExitUsage, "want one incident id"},
		{[]string{"traces", "show", "abc"}, ExitUsage, `"abc" is not an incident id`},
		{[]string{"traces", "show", "0"}, ExitUsage, "not an incident id"},
		{[]string{"traces", "show", "99"}, ExitError, "no incident with id 99"},
		{[]string{"traces", "tail", "-n", "-1"}, ExitUsage, "must not be negative"},
	}
	for _, tc := range tests {
		code, _, errOut := tracesRun(ctx, dir, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.stderr) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.stderr)
		}
	}
}

func TestTracesHelp(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"traces", "--help"}, {"traces", "list", "--help"}, {"traces", "show", "--help"},
		{"traces", "top", "--help"}, {"traces", "tail", "--help"},
	} {
		code, out, errOut := tracesRun(ctx, t.TempDir(), args...)
		if code != 0 || !strings.Contains(out+errOut, "usage: mtev-supervise traces") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
}

func TestTracesNoJournal(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for _, sub := range []string{"list", "top", "tail"} {
		code, out, errOut := tracesRun(ctx, dir, "traces", sub)
		if code != 0 || out != "" || !strings.Contains(errOut, "no incidents recorded") {
			t.Errorf("%s without journal: %d %q %q", sub, code, out, errOut)
		}
	}
	if code, out, _ := tracesRun(ctx, dir, "traces", "list", "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("list --json without journal: %d %q", code, out)
	}
	if code, _, errOut := tracesRun(ctx, dir, "traces", "show", "latest"); code != ExitError || !strings.Contains(errOut, "no incidents recorded") {
		t.Errorf("show latest without journal: %d %q", code, errOut)
	}
	// An empty journal directory is no journal either; a directory holding
	// something else is an error.
	jdir := watchdog.JournalDir(dir)
	if err := os.MkdirAll(jdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := tracesRun(ctx, dir, "traces", "list"); code != 0 || !strings.Contains(errOut, "no incidents recorded") {
		t.Errorf("list with empty journal dir: %d %q", code, errOut)
	}
	if err := os.WriteFile(filepath.Join(jdir, "stray"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := tracesRun(ctx, dir, "traces", "list"); code != ExitError || !strings.Contains(errOut, "not a journal") {
		t.Errorf("list with a foreign directory: %d %q", code, errOut)
	}
}

// TestTracesNewerSchema: a record written by a newer, incompatible
// mtev-supervise is skipped with a warning by list and refused by show,
// both naming its id.
func TestTracesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	w, err := journal.Open(watchdog.JournalDir(dir), journal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := trace.Encode(exitRec(time.Now()))
	if _, err := w.Append(b); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append([]byte(`{"schema":"2.0","reason":"teleported","service":"api"}`)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	ctx := context.Background()
	code, out, errOut := tracesRun(ctx, dir, "traces", "list")
	if code != 0 || !strings.Contains(out, "exit") || !strings.Contains(errOut, "warning: skipped incident 2") || !strings.Contains(errOut, "newer schema") {
		t.Errorf("list: %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = tracesRun(ctx, dir, "traces", "show", "2")
	if code != ExitError || !strings.Contains(errOut, "incident 2") || !strings.Contains(errOut, "record is 2.0") {
		t.Errorf("show 2: %d %s", code, errOut)
	}
}

// TestTracesDamage: damaged journal bytes are reported on stderr; the
// intact records are still listed and the exit status is 0.
func TestTracesDamage(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	tracesAppend(t, dir, exitRec(now), stallRec(now), exitRec(now))
	segs, err := filepath.Glob(filepath.Join(watchdog.JournalDir(dir), "*.seg"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments %v %v", segs, err)
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(`"worker"`))
	if i < 0 {
		t.Fatal("stall record not found in segment")
	}
	data[i+1] ^= 0xff // corrupt the second record
	if err := os.WriteFile(segs[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := tracesRun(context.Background(), dir, "traces", "list")
	if code != 0 || !strings.Contains(errOut, "warning: journal damage") {
		t.Errorf("list: exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "\n1 ") || !strings.Contains(out, "\n3 ") || strings.Contains(out, "worker") {
		t.Errorf("list output:\n%s", out)
	}
}

func TestTracesTop(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	first, last := now.Add(-time.Hour), now.Add(-time.Minute)
	tracesAppend(t, dir, crashRec(t, first, 100), stallRec(now.Add(-30*time.Minute)), crashRec(t, last, 200), exitRec(now))
	code, out, _ := tracesRun(context.Background(), dir, "traces", "top", "--json")
	var rows []topRow
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil {
		t.Fatalf("top --json: %d %v\n%s", code, err, out)
	}
	if len(rows) != 3 {
		t.Fatalf("rows: %+v", rows)
	}
	r := rows[0]
	if r.Count != 2 || !r.FirstSeen.Equal(first) || !r.LastSeen.Equal(last) || r.LastID != "3" || r.Culprit != "main.writer" || r.Reason != trace.ReasonCrash {
		t.Errorf("top row: %+v", r)
	}
	if rows[1].Count != 1 || rows[1].LastID != "4" || rows[2].LastID != "2" {
		t.Errorf("order of single rows: %+v", rows[1:])
	}
	code, out, _ = tracesRun(context.Background(), dir, "traces", "top")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[1], "2 ") || !strings.Contains(lines[1], "main.writer") {
		t.Errorf("top:\n%s", out)
	}
}

func TestTracesTail(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	tracesAppend(t, dir, exitRec(now), stallRec(now), exitRec(now))
	code, out, _ := tracesRun(context.Background(), dir, "traces", "tail", "-n", "2")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], "2 ") || !strings.HasPrefix(lines[2], "3 ") {
		t.Errorf("tail -n 2:\n%s", out)
	}
}

// TestTracesTailFollow: tail -f prints incidents appended while it runs,
// and ends without error when interrupted.
func TestTracesTailFollow(t *testing.T) {
	dir := t.TempDir()
	tracesAppend(t, dir, exitRec(time.Now()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncbuf.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string {
			if k == "MTEV_STATE_DIR" {
				return dir
			}
			return ""
		}}
	done := make(chan int, 1)
	go func() { done <- Run(ctx, env, []string{"traces", "tail", "-f", "--json"}) }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; stdout:\n%s\nstderr:\n%s", what, out.String(), errOut.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("the existing record", func() bool { return strings.Count(out.String(), "\n") == 1 })
	tracesAppend(t, dir, stallRec(time.Now()))
	waitFor("the new record", func() bool { return strings.Count(out.String(), "\n") == 2 })
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("tail -f exit %d: %s", code, errOut.String())
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		rec, err := trace.Decode([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID+":"+string(rec.Reason))
	}
	if strings.Join(ids, " ") != "1:exit 2:stall" {
		t.Errorf("followed %v", ids)
	}
}

func TestStateDir(t *testing.T) {
	tests := []struct {
		flag string
		env  map[string]string
		want string
		bad  bool
	}{
		{"/flag", map[string]string{"MTEV_STATE_DIR": "/env"}, "/flag", false},
		{"", map[string]string{"MTEV_STATE_DIR": "/env", "XDG_STATE_HOME": "/xdg", "HOME": "/home/u"}, "/env", false},
		{"", map[string]string{"XDG_STATE_HOME": "/xdg", "HOME": "/home/u"}, "/xdg/mtev-supervise", false},
		{"", map[string]string{"XDG_STATE_HOME": "relative", "HOME": "/home/u"}, "/home/u/.local/state/mtev-supervise", false},
		{"", map[string]string{"HOME": "/home/u"}, "/home/u/.local/state/mtev-supervise", false},
		{"", map[string]string{}, "", true},
	}
	for _, tc := range tests {
		env := &Env{Getenv: func(k string) string { return tc.env[k] }}
		got, err := stateDir(env, tc.flag)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("stateDir(%q, %v) = %q, %v; want %q", tc.flag, tc.env, got, err, tc.want)
		}
	}
}
