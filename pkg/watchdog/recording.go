package watchdog

import (
	"fmt"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
)

// Recording: the loop opens a record (newRecord) and queues it for the
// journal writer (record), which completes it (crash.go, complete) and
// stores it (write) through the incident Store. See package incident for
// which goroutine owns a record at each step.

func (s *Supervisor) newRecord(c *child, reason trace.Reason) *trace.Record {
	return &trace.Record{
		Schema:     trace.SchemaVersion,
		Service:    s.cfg.Name,
		Time:       s.opts.Now(),
		Reason:     reason,
		PID:        c.pid,
		StartCount: c.start,
		Command:    s.cfg.Command,
		LogTail:    c.tail.snapshot(),
	}
}

// record queues rec for the journal writer, with fatal output to parse.
func (s *Supervisor) record(rec *trace.Record, crash []byte) {
	s.records <- pending{rec: rec, crash: crash}
}

// write appends rec to the journal; a failure is a warning, never the end
// of supervision.
func (s *Supervisor) write(rec *trace.Record) {
	// A seq comes back with an error when the record was stored but
	// retention failed afterwards.
	seq, err := s.store.Append(rec)
	if err != nil {
		s.event(Warning{Err: fmt.Errorf("watchdog: record incident: %w", err)})
	}
	if seq != 0 {
		s.event(Recorded{Record: rec})
	}
}
