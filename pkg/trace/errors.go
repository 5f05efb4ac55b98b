package trace

import "errors"

// Sentinel errors of package trace. Errors returned by the package wrap one
// of these where a caller may need to tell the case apart.
var (
	// ErrNoGoroutines: the text given to ParseCrash holds no goroutine dump.
	ErrNoGoroutines = errors.New("no goroutine dump found")
	// ErrMalformedDump: the text given to ParseCrash holds a goroutine dump
	// too damaged to parse.
	ErrMalformedDump = errors.New("malformed goroutine dump")
	// ErrGliderBudget: the glider command ran past its budget and was
	// killed; its partial output is kept.
	ErrGliderBudget = errors.New("glider exceeded its budget")
	// ErrNoProcess: the process to sample does not exist (any more).
	ErrNoProcess = errors.New("no such process")
)
