package config

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps one of them
// (test with errors.Is) and, where the problem has a place in a file, is an
// *Error carrying that place.
var (
	// ErrSyntax: a file is not well-formed XML, has no root element or
	// more than one, or nests deeper than the parser allows.
	ErrSyntax = errors.New("xml syntax")
	// ErrInclude: an <include> names no file, a file that cannot be read,
	// or a file that is already being included (a cycle).
	ErrInclude = errors.New("bad include")
	// ErrBackingStore: a backingstore directory is missing, unreadable or
	// holds a file that is not a valid piece.
	ErrBackingStore = errors.New("bad backing store")
	// ErrRead: a configuration file cannot be read.
	ErrRead = errors.New("cannot read file")
	// ErrInvalid: a value or element breaks a declared section, or a value
	// cannot be converted to the requested type.
	ErrInvalid = errors.New("invalid configuration")
	// ErrNotFound: a path selects no element, where one is required.
	ErrNotFound = errors.New("not found")
	// ErrPath: a path expression cannot be compiled.
	ErrPath = errors.New("bad path")
	// ErrWrite: a write-back failed; the in-memory change is kept and
	// retried by the next write-back.
	ErrWrite = errors.New("write-back failed")
	// ErrClosed: the Config was closed.
	ErrClosed = errors.New("closed")
	// ErrAborted: a function attached to LoadHook returned ABORT.
	ErrAborted = errors.New("aborted by hook")
	// ErrEnv: an element asked for by path is left out because the
	// environment fails its require_env (or an ancestor's).
	ErrEnv = errors.New("required environment missing")
)

// Pos is a place in a configuration file. Line is 1-based; a zero Pos means
// the element was created in memory and has no file position yet.
type Pos struct {
	File string
	Line int
}

// String renders the position as "file:line", or "file" without a line,
// or "(memory)" for an element created in memory.
func (p Pos) String() string {
	switch {
	case p.File == "":
		return "(memory)"
	case p.Line <= 0:
		return p.File
	default:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
}

// Error is a problem at a place in a configuration file. Its message reads
// "file:line: message"; it unwraps to one of the package sentinels.
type Error struct {
	Pos Pos
	Msg string
	Err error // a package sentinel, possibly wrapping a cause
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Unwrap returns the sentinel (and cause) behind the problem.
func (e *Error) Unwrap() error { return e.Err }

// errorf builds an *Error at pos wrapping kind.
func errorf(pos Pos, kind error, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...), Err: kind}
}

// Problems returns the individual problems inside err: the *Error values
// of a joined error (as returned by Validate, Load and Reload, possibly
// wrapped), or err itself when it holds no such list.
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	return collect(err)
}

func collect(err error) []error {
	if _, ok := err.(*Error); ok {
		return []error{err}
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, x := range j.Unwrap() {
			out = append(out, collect(x)...)
		}
		return out
	}
	if inner := errors.Unwrap(err); inner != nil {
		r := collect(inner)
		if _, ok := r[0].(*Error); ok || len(r) > 1 {
			return r
		}
	}
	return []error{err}
}
