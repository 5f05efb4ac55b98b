package trace

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schema is the version written into every record: "major.minor". A reader
// accepts any minor version of a major it knows and refuses a newer major.
const (
	SchemaMajor = 1
	SchemaMinor = 0
)

// SchemaVersion is the schema string of records written by this build.
var SchemaVersion = fmt.Sprintf("%d.%d", SchemaMajor, SchemaMinor)

// ErrNewerSchema is returned by Decode for a record written by a newer,
// incompatible version of mtev-supervise.
var ErrNewerSchema = errors.New("trace: record has a newer schema major version")

// Reason says why an incident was recorded.
type Reason string

const (
	// ReasonCrash: the child died of a signal or a Go fatal error.
	ReasonCrash Reason = "crash"
	// ReasonExit: the child exited on its own with a status.
	ReasonExit Reason = "exit"
	// ReasonStall: a heart, the notify watchdog or the start-up deadline
	// passed its deadline, or the child reported a stalled unit of work.
	ReasonStall Reason = "stall"
)

// Action is what the supervisor did after the incident.
type Action string

const (
	ActionRestart     Action = "restart"      // the child was (or will be) started again
	ActionKeepRunning Action = "keep-running" // soft deadline: captured, child left running
	ActionStop        Action = "stop"         // policy says no restart; supervisor ends
	ActionGiveUp      Action = "give-up"      // crash-loop or same-crash limit reached
)

// Record is one incident: a child death or a stall. It is stored as one JSON
// document in the journal.
type Record struct {
	Schema     string    `json:"schema"`
	ID         string    `json:"id"`
	Service    string    `json:"service"`
	Time       time.Time `json:"time"`
	Reason     Reason    `json:"reason"`
	Action     Action    `json:"action,omitempty"`
	PID        int       `json:"pid"`
	StartCount int       `json:"start_count"`
	Command    []string  `json:"command,omitempty"`
	Exit       *Exit     `json:"exit,omitempty"`
	UptimeMS   int64     `json:"uptime_ms"`
	Stall      *Stall    `json:"stall,omitempty"`
	LogTail    []string  `json:"log_tail"`

	// Filled by capture (pkg/trace capture methods).
	Capture    *Capture    `json:"capture,omitempty"`
	Goroutines []Goroutine `json:"goroutines,omitempty"`
	// GoroutinesOmitted counts goroutines captured but not stored, to keep
	// a record of a very large process bounded; the culprit is always kept.
	GoroutinesOmitted int        `json:"goroutines_omitted,omitempty"`
	Threads           []Thread   `json:"threads,omitempty"`
	Resources         *Resources `json:"resources,omitempty"`
	CrashOutput       string     `json:"crash_output,omitempty"` // raw fatal text, as the child wrote it
	Fingerprint       string     `json:"fingerprint,omitempty"`
	Artifacts         []Artifact `json:"artifacts,omitempty"` // files kept with the record: profiles, flight recorder, core, glider output
}

// Exit is how the child ended. Exactly one of Code and Signal is set.
type Exit struct {
	Code       *int   `json:"code,omitempty"`
	Signal     string `json:"signal,omitempty"` // "SIGSEGV"
	CoreDumped bool   `json:"core_dumped,omitempty"`
	// Sent: the signal was sent by another process (kill(2): SI_USER or
	// SI_TKILL in the fatal output), not raised by a fault of the child.
	// A Go child that printed its dump and exited with status 2 has Code 2
	// and Signal set both.
	Sent bool `json:"sent,omitempty"`
	// SenderPID is the process that sent it, when known. The kernel tells
	// only the receiver, and the Go runtime does not print it, so it is
	// set only when the supervisor itself sent the signal (one it
	// forwarded, or a Signal request): then Sent is set too.
	SenderPID int `json:"sender_pid,omitempty"`
}

func (e *Exit) String() string {
	switch {
	case e == nil:
		return "-"
	case e.Signal != "":
		s := "signal " + e.Signal
		if e.Sent {
			s += " (sent by another process"
			if e.SenderPID != 0 {
				s += ", pid " + strconv.Itoa(e.SenderPID)
			}
			s += ")"
		}
		if e.CoreDumped {
			s += " (core dumped)"
		}
		return s
	case e.Code != nil:
		return "status " + strconv.Itoa(*e.Code)
	}
	return "-"
}

// StallSource says what saw a stall. The supervisor's own sources are
// SourceHeart, SourceNotify and SourceStartup; a child reports its own
// units of work under another lowercase word (SourceHTTP, SourceLua,
// SourceModule, SourceProbe, ...).
type StallSource string

const (
	SourceHeart   StallSource = "heart"           // a heart passed its deadline
	SourceNotify  StallSource = "notify-watchdog" // the notify watchdog (WATCHDOG=1) passed its deadline
	SourceStartup StallSource = "startup"         // no readiness (or no heart) by the start-up deadline
	SourceHTTP    StallSource = "http"            // reported: an HTTP handler
	SourceLua     StallSource = "lua"             // reported: a Lua state
	SourceModule  StallSource = "module"          // reported: a module
	SourceProbe   StallSource = "probe"           // a liveness probe failed, in a row, as often as its threshold
)

// Stage is how far past its deadline a stall is.
type Stage string

const (
	StageSoft Stage = "soft" // captured, the child keeps running
	StageHard Stage = "hard" // captured, the child is killed
)

// Stall describes the deadline that passed.
type Stall struct {
	Source StallSource `json:"source"`
	Stage  Stage       `json:"stage"`

	Heart     string `json:"heart,omitempty"` // heart name, e.g. "e:default/1"
	Slot      int    `json:"slot,omitempty"`
	ThreadID  int    `json:"thread_id,omitempty"` // OS thread (LWP) that last beat the heart
	AgeMS     int64  `json:"age_ms"`              // time since the last beat when detected (reported: how long the work ran)
	TimeoutMS int64  `json:"timeout_ms"`

	// Set for a stall the child reported of its own unit of work.
	Name   string            `json:"name,omitempty"`       // route, script, module
	Detail string            `json:"detail,omitempty"`     // the child's words
	Labels map[string]string `json:"labels,omitempty"`     // pprof labels of the stuck goroutine
	PID    int               `json:"target_pid,omitempty"` // the process captured, when not the child (a module's process)
	// Dropped counts reports of the child dropped (rate limit, full
	// channel) before this one.
	Dropped int `json:"dropped,omitempty"`
	// Failures: for a probe's stall (Name is its target, Detail its last
	// error), the failures in a row that made it; AgeMS is then the time
	// since its last pass and TimeoutMS its interval times its threshold.
	Failures int `json:"failures,omitempty"`
}

// Method is a capture method, as records spell it.
type Method string

const (
	MethodCooperative Method = "cooperative"  // the child's own dump over the dump channel
	MethodDelve       Method = "delve"        // Delve attached to the live child
	MethodDelveCore   Method = "delve-core"   // Delve read a core written of the stopped child
	MethodCrashOutput Method = "crash-output" // the fatal output a Go child wrote to its crash-output memfd
	MethodStderr      Method = "stderr"       // the fatal output read from a child's standard error
	MethodCore        Method = "core"         // Delve read the core file a crash left
	MethodGlider      Method = "glider"       // the external tracer
	MethodNone        Method = "none"         // nothing worked (Error says why)
)

// Capture says how goroutines were captured, and why not if they were not.
type Capture struct {
	Method     Method `json:"method"`
	DurationMS int64  `json:"duration_ms"`
	PauseMS    int64  `json:"pause_ms,omitempty"` // time the child was stopped by the capture
	Error      string `json:"error,omitempty"`
	// Attempts lists every method tried, in order, including failed ones.
	Attempts []Attempt `json:"attempts,omitempty"`
}

// Attempt is one capture method tried.
type Attempt struct {
	Method     Method `json:"method"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

// Goroutine is one goroutine as captured.
type Goroutine struct {
	ID         int64             `json:"id"`
	State      string            `json:"state"` // "running", "runnable", "waiting", "syscall", ...
	WaitReason string            `json:"wait_reason,omitempty"`
	WaitMS     int64             `json:"wait_ms,omitempty"`
	Culprit    bool              `json:"culprit,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	ThreadID   int               `json:"thread_id,omitempty"`
	Frames     []Frame           `json:"frames"`
	CreatedBy  *Frame            `json:"created_by,omitempty"`
}

// Frame is one stack frame.
type Frame struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
}

func (f Frame) String() string { return fmt.Sprintf("%s %s:%d", f.Function, f.File, f.Line) }

// Thread is one OS thread of the child.
type Thread struct {
	ID          int     `json:"id"`
	Goroutine   int64   `json:"goroutine,omitempty"`
	State       string  `json:"state,omitempty"`  // /proc state letter meaning: "running", "sleeping", ...
	CPUMS       float64 `json:"cpu_ms,omitempty"` // CPU used over the last sampling interval
	Frames      []Frame `json:"frames,omitempty"`
	Description string  `json:"description,omitempty"`
}

// Resources is the child's resource use at the time of the incident.
type Resources struct {
	RSSBytes  uint64  `json:"rss_bytes"`
	UserMS    float64 `json:"user_ms"`
	SystemMS  float64 `json:"system_ms"`
	Threads   int     `json:"threads"`
	OpenFDs   int     `json:"open_fds"`
	CPUPct    float64 `json:"cpu_pct"` // over the last sampling interval; near 0 with a stalled heart suggests deadlock, near 100 a spin
	Starved   bool    `json:"starved,omitempty"`
	Goroutine int     `json:"goroutines,omitempty"`
	// I/O since the process started (/proc/<pid>/io rchar and wchar:
	// bytes through read and write calls, to files, pipes and sockets
	// alike), and its direct children; zero when unreadable (another
	// user's process's io is not readable without root).
	ReadBytes  uint64 `json:"read_bytes,omitempty"`
	WriteBytes uint64 `json:"write_bytes,omitempty"`
	Children   int    `json:"children,omitempty"`
}

// ArtifactKind says what an artifact file holds.
type ArtifactKind string

const (
	KindGoroutines  ArtifactKind = "goroutines"         // the child's goroutine profile (debug=2)
	KindGrouped     ArtifactKind = "goroutines-grouped" // the same, grouped by stack, with labels (debug=1)
	KindTrace       ArtifactKind = "trace"              // the child's flight recorder window
	KindCore        ArtifactKind = "core"               // a core file
	KindGlider      ArtifactKind = "glider-output"      // the external tracer's output
	KindCrashOutput ArtifactKind = "crash-output.txt"   // crash output too large for the record
)

// Artifact is a file kept with a record.
type Artifact struct {
	Kind  ArtifactKind `json:"kind"`
	Path  string       `json:"path"`
	Bytes int64        `json:"bytes"`
}

// Encode returns the JSON form of r, with the schema set.
func Encode(r *Record) ([]byte, error) {
	if r.Schema == "" {
		r.Schema = SchemaVersion
	}
	return json.Marshal(r)
}

// Decode parses a record. It refuses a record of a newer major schema with an
// error that wraps ErrNewerSchema and names both versions.
func Decode(data []byte) (*Record, error) {
	var probe struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("trace: decode record: %w", err)
	}
	major, _, _ := strings.Cut(probe.Schema, ".")
	m, err := strconv.Atoi(major)
	if err != nil {
		return nil, fmt.Errorf("trace: decode record: bad schema %q", probe.Schema)
	}
	if m > SchemaMajor {
		return nil, fmt.Errorf("%w: record is %s, this mtev-supervise reads %d.x; upgrade mtev-supervise", ErrNewerSchema, probe.Schema, SchemaMajor)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("trace: decode record: %w", err)
	}
	return &r, nil
}
