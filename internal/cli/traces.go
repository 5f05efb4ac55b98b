package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/incident"
)

// tracesFollowPoll is how often `traces tail -f` looks for a journal that
// does not exist yet.
const tracesFollowPoll = 250 * time.Millisecond

// defaultTailCount is how many records `traces tail` prints before following.
const defaultTailCount = 10

const stateDirDoc = "state directory (default: $MTEV_STATE_DIR, else $XDG_STATE_HOME/mtev-supervise, else ~/.local/state/mtev-supervise)"

func init() {
	Register(&Command{Name: "traces", Summary: "list, show, group and follow recorded incidents", Run: tracesCmd})
}

type tracesSub struct {
	name, synopsis, summary string
	run                     func(ctx context.Context, env *Env, args []string) error
}

const (
	tracesListSynopsis = "traces list [--json] [--reason R] [--since T] [--service S] [--state-dir D]"
	tracesShowSynopsis = "traces show ID|latest [--json] [--all] [--state-dir D]"
	tracesTopSynopsis  = "traces top [--json] [--across-services] [--reason R] [--since T] [--service S] [--state-dir D]"
	tracesTailSynopsis = "traces tail [-f] [-n N] [--json] [--state-dir D]"
)

var tracesSubs = []tracesSub{
	{"list", tracesListSynopsis, "one line per incident", tracesList},
	{"show", tracesShowSynopsis, "one incident in full: culprit goroutine first, then the others grouped", tracesShow},
	{"top", tracesTopSynopsis, "one line per service and fingerprint: count, first and last seen, culprit", tracesTop},
	{"tail", tracesTailSynopsis, "the latest incidents; with -f, follow new ones until interrupted", tracesTail},
}

func tracesUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: mtev-supervise traces <list|show|top|tail> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Incidents (crashes, exits, stalls) are read from the journal in the state directory.")
	fmt.Fprintln(w)
	for _, s := range tracesSubs {
		fmt.Fprintf(w, "  %-5s %s\n", s.name, s.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'mtev-supervise traces <subcommand> --help' for its flags.")
}

func tracesCmd(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		tracesUsage(env.Stderr)
		return usageError("traces: missing subcommand")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		tracesUsage(env.Stdout)
		return nil
	}
	for _, s := range tracesSubs {
		if s.name == args[0] {
			return s.run(ctx, env, args[1:])
		}
	}
	tracesUsage(env.Stderr)
	return usageError("traces: unknown subcommand %q", args[0])
}

// traceFilter selects records for list and top.
type traceFilter struct {
	reason  string
	since   string
	service string

	sinceTime time.Time
}

func (f *traceFilter) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.reason, "reason", "", "only incidents of this reason: crash, exit or stall")
	fs.StringVar(&f.since, "since", "", "only incidents since this long ago (1h, 30m) or this RFC 3339 time")
	fs.StringVar(&f.service, "service", "", "only incidents of this service")
}

func (f *traceFilter) check(now time.Time) error {
	switch trace.Reason(f.reason) {
	case "", trace.ReasonCrash, trace.ReasonExit, trace.ReasonStall:
	default:
		return usageError("--reason %q: want crash, exit or stall", f.reason)
	}
	if f.since != "" {
		t, err := parseSince(f.since, now)
		if err != nil {
			return err
		}
		f.sinceTime = t
	}
	return nil
}

func (f *traceFilter) match(r *trace.Record) bool {
	return (f.reason == "" || string(r.Reason) == f.reason) &&
		(f.service == "" || r.Service == f.service) &&
		(f.sinceTime.IsZero() || !r.Time.Before(f.sinceTime))
}

// parseSince accepts a duration back from now ("1h", "90m") or an RFC 3339
// time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usageError("--since %q: a duration must not be negative", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, usageError("--since %q: want a duration (1h, 30m) or an RFC 3339 time (2006-01-02T15:04:05Z)", s)
}

// selectRecords parses the flags list and top share and reads the records
// they select.
func selectRecords(env *Env, name, synopsis string, args []string, extra ...func(*flag.FlagSet)) ([]*trace.Record, bool, error) {
	fs := newFlagSet(env, "traces "+name, synopsis)
	var filter traceFilter
	filter.bind(fs)
	for _, bind := range extra {
		bind(fs)
	}
	asJSON := fs.Bool("json", false, "machine-readable output: a JSON array")
	dirFlag := fs.String("state-dir", "", stateDirDoc)
	if err := parseFlags(fs, args); err != nil {
		return nil, false, err
	}
	if fs.NArg() > 0 {
		return nil, false, usageError("traces %s: unexpected argument %q", name, fs.Arg(0))
	}
	if err := filter.check(env.now()); err != nil {
		return nil, false, err
	}
	recs, err := readFiltered(env, *dirFlag, &filter)
	return recs, *asJSON, err
}

func tracesList(ctx context.Context, env *Env, args []string) error {
	recs, asJSON, err := selectRecords(env, "list", tracesListSynopsis, args)
	if err != nil {
		return err
	}
	if asJSON {
		rows := make([]listRow, 0, len(recs))
		for _, r := range recs {
			rows = append(rows, newListRow(r))
		}
		return writeIndentedJSON(env.Stdout, rows)
	}
	if len(recs) == 0 {
		fmt.Fprintln(env.Stderr, "no incidents recorded")
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tSERVICE\tREASON\tEXIT\tCULPRIT\tFINGERPRINT")
	for _, r := range recs {
		writeListLine(tw, r)
	}
	return tw.Flush()
}

func writeListLine(w io.Writer, r *trace.Record) {
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, formatIncidentTime(r.Time), dashIfEmpty(r.Service), r.Reason,
		r.Exit.String(), dashIfEmpty(trace.Summary(r)), trace.ShortFingerprint(fingerprintOf(r)))
}

// readFiltered reads the records that match filter, oldest first.
func readFiltered(env *Env, dirFlag string, filter *traceFilter) ([]*trace.Record, error) {
	r, _, ok, err := openIncidents(env, dirFlag)
	if err != nil || !ok {
		return nil, err
	}
	defer r.Close()
	all, err := readAll(env, r)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, rec := range all {
		if filter.match(rec) {
			out = append(out, rec)
		}
	}
	return out, nil
}

// listRow is one incident in `traces list --json`.
type listRow struct {
	ID          string       `json:"id"`
	Time        time.Time    `json:"time"`
	Service     string       `json:"service"`
	Reason      trace.Reason `json:"reason"`
	Action      trace.Action `json:"action,omitempty"`
	PID         int          `json:"pid"`
	Exit        *trace.Exit  `json:"exit,omitempty"`
	Culprit     string       `json:"culprit"`
	Fingerprint string       `json:"fingerprint"`
}

func newListRow(r *trace.Record) listRow {
	return listRow{ID: r.ID, Time: r.Time, Service: r.Service, Reason: r.Reason, Action: r.Action, PID: r.PID,
		Exit: r.Exit, Culprit: trace.Summary(r), Fingerprint: fingerprintOf(r)}
}

// fingerprintOf returns the record's fingerprint, computing it for records
// written without one.
func fingerprintOf(r *trace.Record) string {
	if r.Fingerprint != "" {
		return r.Fingerprint
	}
	return trace.Fingerprint(r)
}

func tracesShow(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "traces show", tracesShowSynopsis)
	asJSON := fs.Bool("json", false, "machine-readable output: the record as JSON")
	all := fs.Bool("all", false, fmt.Sprintf("print the whole log tail, not only its last %d lines", trace.DefaultLogLines))
	dirFlag := fs.String("state-dir", "", stateDirDoc)
	if err := parseFlags(fs, interleaveArgs(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("traces show: want one incident id or \"latest\"")
	}
	which := fs.Arg(0)
	var want uint64
	if which != "latest" {
		n, err := strconv.ParseUint(which, 10, 64)
		if err != nil || n == 0 {
			return usageError("traces show: %q is not an incident id (a positive number) or \"latest\"", which)
		}
		want = n
	}
	r, dir, ok, err := openIncidents(env, *dirFlag)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no incidents recorded (no journal in %s)", dir)
	}
	defer r.Close()
	rec, found, err := findIncident(env, r, want)
	if errors.Is(err, incident.ErrUndecodable) {
		return fmt.Errorf("traces show: %w", err)
	}
	if err != nil {
		return err
	}
	if !found {
		if want == 0 {
			return fmt.Errorf("no incidents recorded in %s", dir)
		}
		return fmt.Errorf("no incident with id %d in %s", want, dir)
	}
	if *asJSON {
		return writeIndentedJSON(env.Stdout, rec)
	}
	if rec.Fingerprint == "" {
		rec.Fingerprint = trace.Fingerprint(rec)
	}
	return trace.WriteText(env.Stdout, rec, trace.TextOptions{AllLog: *all})
}

// topRow is one fingerprint in `traces top`.
type topRow struct {
	Fingerprint string       `json:"fingerprint"`
	Count       int          `json:"count"`
	FirstSeen   time.Time    `json:"first_seen"`
	LastSeen    time.Time    `json:"last_seen"`
	LastID      string       `json:"last_id"`
	Reason      trace.Reason `json:"reason"`
	Services    []string     `json:"services"`
	Culprit     string       `json:"culprit"`
}

func tracesTop(ctx context.Context, env *Env, args []string) error {
	var across bool
	recs, asJSON, err := selectRecords(env, "top", tracesTopSynopsis, args, func(fs *flag.FlagSet) {
		fs.BoolVar(&across, "across-services", false, "one row per fingerprint over all services (default: one per service and fingerprint)")
	})
	if err != nil {
		return err
	}
	rows := topRows(recs, across)
	if asJSON {
		return writeIndentedJSON(env.Stdout, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(env.Stderr, "no incidents recorded")
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COUNT\tFIRST SEEN\tLAST SEEN\tLAST ID\tREASON\tSERVICE\tCULPRIT\tFINGERPRINT")
	for _, row := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Count, formatIncidentTime(row.FirstSeen), formatIncidentTime(row.LastSeen),
			row.LastID, row.Reason, dashIfEmpty(strings.Join(row.Services, ",")), dashIfEmpty(row.Culprit), trace.ShortFingerprint(row.Fingerprint))
	}
	return tw.Flush()
}

// topRows groups records (oldest first) by service and fingerprint, or by
// fingerprint alone across services: most frequent first, then most
// recently seen.
func topRows(recs []*trace.Record, acrossServices bool) []topRow {
	index := map[string]int{}
	rows := []topRow{}
	for _, r := range recs {
		fp := fingerprintOf(r)
		key := r.Service + "\x00" + fp
		if acrossServices {
			key = fp
		}
		i, ok := index[key]
		if !ok {
			i = len(rows)
			index[key] = i
			rows = append(rows, topRow{Fingerprint: fp, FirstSeen: r.Time, Reason: r.Reason})
		}
		row := &rows[i]
		row.Count++
		if r.Time.Before(row.FirstSeen) {
			row.FirstSeen = r.Time
		}
		if !r.Time.Before(row.LastSeen) {
			row.LastSeen, row.LastID, row.Culprit = r.Time, r.ID, trace.Summary(r)
		}
		if r.Service != "" && !slices.Contains(row.Services, r.Service) {
			row.Services = append(row.Services, r.Service)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Count != rows[j].Count {
			return rows[i].Count > rows[j].Count
		}
		return rows[i].LastSeen.After(rows[j].LastSeen)
	})
	return rows
}

func tracesTail(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "traces tail", tracesTailSynopsis)
	follow := fs.Bool("f", false, "follow: keep printing incidents as they are recorded, until interrupted")
	count := fs.Int("n", defaultTailCount, "how many of the latest incidents to print first")
	asJSON := fs.Bool("json", false, "machine-readable output: one JSON record per line")
	dirFlag := fs.String("state-dir", "", stateDirDoc)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("traces tail: unexpected argument %q", fs.Arg(0))
	}
	if *count < 0 {
		return usageError("traces tail: -n %d: must not be negative", *count)
	}
	r, _, ok, err := openIncidents(env, *dirFlag)
	if err != nil {
		return err
	}
	if !ok && !*follow {
		fmt.Fprintln(env.Stderr, "no incidents recorded")
		return nil
	}
	for !ok {
		// Wait for the supervisor to create the journal.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(tracesFollowPoll):
		}
		if r, _, ok, err = openIncidents(env, *dirFlag); err != nil {
			return err
		}
	}
	defer r.Close()

	var tw *tabwriter.Writer
	emit := func(rec *trace.Record) error {
		if *asJSON {
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(env.Stdout, "%s\n", b)
			return err
		}
		if tw == nil {
			tw = tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tSERVICE\tREASON\tEXIT\tCULPRIT\tFINGERPRINT")
		}
		writeListLine(tw, rec)
		return nil
	}
	recs, err := readAll(env, r)
	if err != nil {
		return err
	}
	if len(recs) > *count {
		recs = recs[len(recs)-*count:]
	}
	for _, rec := range recs {
		if err := emit(rec); err != nil {
			return err
		}
	}
	if tw != nil {
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if !*follow {
		return nil
	}
	dr := &damageReporter{stderr: env.Stderr, seen: len(r.Damage())}
	err = r.Follow(ctx, func(rec *trace.Record) error {
		defer dr.report(r)
		if err := emit(rec); err != nil {
			return err
		}
		if tw != nil {
			return tw.Flush()
		}
		return nil
	}, func(err error) {
		fmt.Fprintf(env.Stderr, "mtev-supervise traces: warning: skipped %v\n", err)
	})
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil // interrupted: the normal end of -f
	}
	return err
}

// interleaveArgs moves flags that follow positional arguments ("show 3
// --json") before them, so the flag package sees them.
func interleaveArgs(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil {
			if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
				continue
			}
			if i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	return append(append(flags, "--"), pos...)
}

func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func formatIncidentTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
