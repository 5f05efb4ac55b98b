package log

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these where it
// applies; compare with errors.Is.
var (
	// ErrCycle is returned when connecting two facilities would close a
	// cycle in the facility graph.
	ErrCycle = errors.New("log: connection would create a cycle")

	// ErrUnknownFacility is returned when an operation names a facility that
	// does not exist.
	ErrUnknownFacility = errors.New("log: unknown facility")

	// ErrUnknownType is returned when a specification names an outlet type
	// that is not registered.
	ErrUnknownType = errors.New("log: unknown outlet type")

	// ErrInvalid is returned for a specification that cannot be applied:
	// a bad name, a missing path, a value out of range, or an attempt to
	// change the type of a facility that already has one.
	ErrInvalid = errors.New("log: invalid specification")

	// ErrClosed is returned by operations on a closed Graph.
	ErrClosed = errors.New("log: graph closed")
)
