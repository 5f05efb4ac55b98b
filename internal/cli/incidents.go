package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/mtev-supervise/mtev-supervise/pkg/journal"
	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/incident"
)

// The incident reader of `traces`: opening the state directory's records,
// reading them, and reporting journal damage and undecodable records.

// openIncidents opens the incident records of the state directory. ok is
// false, with no error, when nothing was recorded yet; dir is the journal.
func openIncidents(env *Env, dirFlag string) (r *incident.Reader, dir string, ok bool, err error) {
	sd, err := stateDir(env, dirFlag)
	if err != nil {
		return nil, "", false, err
	}
	dir = incident.JournalDir(sd)
	r, err = incident.NewReader(sd)
	if errors.Is(err, incident.ErrNoJournal) {
		return nil, dir, false, nil
	}
	if err != nil {
		return nil, dir, false, fmt.Errorf("traces: %w", err)
	}
	return r, dir, true, nil
}

// damageReporter prints journal damage to stderr once per span.
type damageReporter struct {
	stderr io.Writer
	seen   int
}

func (d *damageReporter) report(r interface{ Damage() []journal.Damage }) {
	dmg := r.Damage()
	for _, x := range dmg[min(d.seen, len(dmg)):] {
		fmt.Fprintf(d.stderr, "mtev-supervise traces: warning: journal damage skipped: %s\n", x)
	}
	d.seen = len(dmg)
}

// readAll reads every record, warning on stderr about damage and about
// records it cannot decode.
func readAll(env *Env, r *incident.Reader) ([]*trace.Record, error) {
	dr := &damageReporter{stderr: env.Stderr}
	defer dr.report(r)
	recs, err := r.ReadAll(func(err error) {
		fmt.Fprintf(env.Stderr, "mtev-supervise traces: warning: skipped %v\n", err)
	})
	if err != nil {
		return recs, fmt.Errorf("traces: %w", err)
	}
	return recs, nil
}

// findIncident returns the record with ID want, or the last one when want
// is 0, reporting journal damage.
func findIncident(env *Env, r *incident.Reader, want uint64) (*trace.Record, bool, error) {
	dr := &damageReporter{stderr: env.Stderr}
	defer dr.report(r)
	rec, found, err := r.Find(want)
	if err != nil && !errors.Is(err, incident.ErrUndecodable) {
		return nil, false, fmt.Errorf("traces: %w", err)
	}
	return rec, found, err
}
