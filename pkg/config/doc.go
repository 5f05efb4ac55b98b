// Package config is the living XML configuration of mtev-supervise and of
// the applications that link pkg/runtime: free-form XML read by path,
// changed in memory while running, written back to the files it came from,
// and reloaded on request.
//
// # Document
//
// The root element is named after the application. Every element knows the
// file and line it was read from (Node.Pos), including elements from
// included files and backing stores, so every problem is reported as
// "file:line: message".
//
// Reads use etree path syntax (github.com/beevik/etree), absolute from the
// document ("/app/listeners/listener") or relative to a Node. A getter path
// may end in "@name" (an attribute) or "ancestor-or-self::node()/@name" (an
// attribute inherited from the nearest ancestor that has it). Typed getters
// (String, Bool, Int, Float, Duration, Size) return the default when the
// path selects nothing, and an *Error naming file and line when the value
// does not parse. Hash merges <config> key/value blocks from the top-most
// ancestor down; <config inherit="ID"> pulls in the hash of the element
// whose id attribute is ID.
//
// # Files
//
//   - <include file="F"/> reads F relative to the including file. As in
//     libmtev the <include> element stays in the tree and the included root
//     element's children become its children (snippet="true": F is a
//     fragment with any number of top-level elements). Changes below an
//     include are written back to F, not to the including file. Cycles,
//     missing and unreadable files are errors at the <include>'s line.
//   - backingstore="DIR" on an element below the root keeps its children as
//     one file each in DIR (relative to the file holding the element):
//     DIR/0000000001.xml, DIR/0000000002.xml, ... in document order. The
//     element itself, with its attributes, stays in its file. A change
//     inside one child rewrites only that child's file; adding a child
//     writes one new file; removing one deletes its file. Children written
//     inline in the element are moved into the store at the next write-back.
//     Files starting with "." are ignored (temporary files of a write). A
//     missing DIR is an error.
//
// Declared sections look through <include> elements, so a section may sit
// in an included file; path getters see the tree as it is ("/app/include/x"
// or "//x").
//
// # Environment
//
// require_env on any element decides whether the element counts; an
// element that does not count (and everything below it) is invisible to
// reads and validation but kept for write-back:
//
//	require_env="VAR"      VAR is set
//	require_env="!VAR"     VAR is not set
//	require_env="VAR=v"    VAR equals v
//	require_env="VAR~re"   VAR matches the regular expression re
//
// Values (attributes and text, as read, never as written back) expand
// {{ENV:DEFAULT:TEMPLATE}} anywhere, and ENV:DEFAULT:TEMPLATE as a whole
// value: TEMPLATE holds {NAME} references; when all referenced variables are
// set the result is TEMPLATE with them substituted, otherwise DEFAULT
// (which runs to the first ':'). So {{ENV:8080:{PORT}}} is $PORT or 8080,
// and {{ENV::{HOST}:{PORT}}} is "host:port" or empty. Other {{...}} forms
// are left as written.
//
// Node.Resolved returns a copy of a subtree as a service reads it (values
// interpolated, elements that do not count left out and listed with the
// file:line of the require_env that fails); Config.Inactive says why a
// path selects nothing (ErrEnv).
//
// # Changes and write-back
//
// Set, Add and Remove change the document in memory, bump the generation
// counter and notify subscribers. Unless Options.NoWriteBack is set, the
// files holding the changed elements are written after Options.Coalesce of
// quiet (one write per file per burst); Flush writes at once and Close
// flushes. Each file is replaced atomically through a temporary file in the
// same directory and a rename, keeping its mode and owner: a crash at any
// point leaves the old file or the new one, never a mix.
//
// # Declared sections
//
// A component declares what it reads as a Section (elements and attributes
// with type, default, enum or pattern, description, required, repeated)
// and registers it with Register from an init function. Validate checks a
// configuration against sections and returns every problem; Load and Reload
// validate Options.Sections; Markdown renders the reference tables from the
// same declarations; Config.Section returns Values whose getters fall back
// to the declared defaults.
//
// # Reload
//
// Reload parses and validates the files again; a bad file is rejected with
// file:line and the running configuration stays. On success subscribers
// receive the changed element paths. The supervisor calls Reload on SIGHUP.
//
// # Concurrency
//
// A Config is safe for concurrent use: reads take a read lock, changes and
// reload a write lock. Lock order: flushMu (write-back, reload), then mu
// (the document), then subsMu (subscribers). File I/O of write-back runs
// without mu held, so readers are not blocked by the disk. Subscribers run
// in the goroutine that made the change with no lock held; they may read
// the Config but must not block for long. The only goroutine the package
// starts is the coalescing timer's write-back; Close stops it and waits.
package config
