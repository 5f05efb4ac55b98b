package log

import (
	"encoding/json"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
)

// Record is the value of LineHook: one finished line about to be written.
type Record struct {
	Facility string // the facility the line was logged to
	JSON     []byte // zerolog's JSON line; valid only during the call
}

// LineHook is libmtev's mtev_log_line: it runs for every line logged to a
// facility that reaches an enabled output, on the logging goroutine,
// before any output sees the line. ABORT drops the line (no output writes
// it). A function attached here must not log to the same Graph (that
// would recurse) and must not keep Record.JSON. With nothing attached it
// costs one atomic load per line. Functions attached by name see
// {"facility","line"} with the line as a JSON object.
var LineHook = hook.New[Record]("mtev_log_line", "a log line is about to be written; ABORT drops it").
	Describe(func(r Record) any {
		return struct {
			Facility string          `json:"facility"`
			Line     json.RawMessage `json:"line"`
		}{r.Facility, json.RawMessage(r.JSON)}
	})
