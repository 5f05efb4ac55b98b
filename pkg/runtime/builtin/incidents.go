package builtin

import (
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/incident"
)

// ReadIncidents reads the incidents of service from the journal under
// stateDir (the supervisor gives its child the directory in
// MTEV_STATE_DIR), newest first, at most limit (all when limit <= 0), each
// with its journal sequence number as ID (as "mtev-supervise traces" shows
// it). A
// state directory without a journal yet has no incidents. It only reads.
func ReadIncidents(stateDir, service string, limit int) ([]*trace.Record, error) {
	r, err := incident.NewReader(stateDir)
	if errors.Is(err, incident.ErrNoJournal) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []*trace.Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, incident.ErrUndecodable) {
			continue // a record we cannot read: the CLI reports it
		}
		if err != nil {
			return nil, err
		}
		if service != "" && rec.Service != service {
			continue
		}
		out = append(out, rec)
		if limit > 0 && len(out) > 2*limit {
			out = append(out[:0], out[len(out)-limit:]...)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// Incident is one record as /mtev/incidents.json lists it.
type Incident struct {
	ID          string        `json:"id"`
	Time        int64         `json:"time"` // ms since the epoch
	Reason      trace.Reason  `json:"reason"`
	Action      trace.Action  `json:"action,omitempty"`
	PID         int           `json:"pid"`
	StartCount  int           `json:"start_count"`
	Exit        string        `json:"exit,omitempty"`
	Stall       *trace.Stall  `json:"stall,omitempty"`
	UptimeMS    int64         `json:"uptime_ms"`
	Fingerprint string        `json:"fingerprint,omitempty"`
	Culprit     *Culprit      `json:"culprit,omitempty"`
	Capture     string        `json:"capture,omitempty"`
	Goroutines  int           `json:"goroutines"`
	Record      *trace.Record `json:"record,omitempty"` // with ?id=
}

// Culprit is the goroutine blamed for an incident.
type Culprit struct {
	ID     int64             `json:"id"`
	State  string            `json:"state"`
	Labels map[string]string `json:"labels,omitempty"`
	Top    string            `json:"top,omitempty"` // the frame to blame (trace.CulpritFrame)
}

// Group is the incidents sharing a fingerprint.
type Group struct {
	Fingerprint string       `json:"fingerprint"`
	Count       int          `json:"count"`
	Reason      trace.Reason `json:"reason"`
	Last        int64        `json:"last"` // ms since the epoch
	LastID      string       `json:"last_id"`
	Culprit     *Culprit     `json:"culprit,omitempty"`
}

func summarizeIncident(rec *trace.Record) Incident {
	in := Incident{
		ID: rec.ID, Time: rec.Time.UnixMilli(), Reason: rec.Reason, Action: rec.Action, PID: rec.PID,
		StartCount: rec.StartCount, Stall: rec.Stall, UptimeMS: rec.UptimeMS,
		Fingerprint: rec.Fingerprint, Goroutines: len(rec.Goroutines) + rec.GoroutinesOmitted,
	}
	if rec.Exit != nil {
		in.Exit = rec.Exit.String()
	}
	if rec.Capture != nil {
		in.Capture = string(rec.Capture.Method)
	}
	if g := trace.Culprit(rec); g != nil {
		c := &Culprit{ID: g.ID, State: g.State, Labels: g.Labels}
		if f, ok := trace.CulpritFrame(g); ok {
			c.Top = f.String()
		}
		in.Culprit = c
	}
	return in
}

// incidentsJSON serves /mtev/incidents.json[?limit=N]: {"incidents":
// newest first, "groups": by fingerprint, most frequent first}; with
// ?id=ID, that incident alone with its whole record, goroutines culprit
// first.
func (s *server) incidentsJSON(w http.ResponseWriter, r *http.Request) {
	if s.o.Incidents == nil {
		jsonError(w, http.StatusNotFound, "incidents: %v (no supervisor state directory)", errMissing)
		return
	}
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			jsonError(w, http.StatusBadRequest, "limit=%q: want a positive count", v)
			return
		}
		limit = n
	}
	id := q.Get("id")
	if id != "" {
		limit = 0
	}
	recs, err := s.o.Incidents(limit)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "incidents: %v", err)
		return
	}
	if id != "" {
		for _, rec := range recs {
			if rec.ID == id {
				in := summarizeIncident(rec)
				sort.SliceStable(rec.Goroutines, func(i, j int) bool {
					return rec.Goroutines[i].Culprit && !rec.Goroutines[j].Culprit
				})
				in.Record = rec
				writeJSON(w, http.StatusOK, in)
				return
			}
		}
		jsonError(w, http.StatusNotFound, "incident '%s' not found", id)
		return
	}
	out := struct {
		Service   string     `json:"service"`
		Incidents []Incident `json:"incidents"`
		Groups    []Group    `json:"groups"`
	}{Service: s.o.Service, Incidents: []Incident{}, Groups: []Group{}}
	byFP := map[string]int{}
	for _, rec := range recs {
		in := summarizeIncident(rec)
		out.Incidents = append(out.Incidents, in)
		fp := in.Fingerprint
		if fp == "" {
			continue
		}
		i, ok := byFP[fp]
		if !ok {
			i = len(out.Groups)
			byFP[fp] = i
			out.Groups = append(out.Groups, Group{Fingerprint: fp, Reason: in.Reason, Last: in.Time, LastID: in.ID, Culprit: in.Culprit})
		}
		out.Groups[i].Count++
	}
	sort.SliceStable(out.Groups, func(i, j int) bool { return out.Groups[i].Count > out.Groups[j].Count })
	writeJSON(w, http.StatusOK, out)
}
