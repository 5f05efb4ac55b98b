package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
)

// Mode is a command mode with its own tree and prompt, like libmtev's
// console states ("configure terminal" enters the conf mode).
type Mode struct {
	Name   string
	Tree   *Tree
	Prompt func(s *Session) string
}

// TopMode is the mode a session starts in.
var TopMode = &Mode{Name: "top", Tree: Default, Prompt: func(s *Session) string { return s.srv.name + "# " }}

// ErrClosed is returned by Execute once the session has ended ("exit" at
// the top level, or a command that ends the session).
var ErrClosed = errors.New("console: session closed")

// Session is one connected user: a stack of modes, the output stream and
// the state commands keep between lines. A session runs one command at a
// time; its methods are called from the goroutine running that command,
// except Write, which is safe from any goroutine (log lines arrive from
// the log writer while "log connect" waits).
type Session struct {
	srv   *Server
	id    uint64
	ctx   context.Context
	modes []*Mode
	json  bool

	wmu sync.Mutex
	w   io.Writer
	// logLine, when set, receives followed log lines instead of w (the
	// JSON transport sends them as {"id":0,"log":...}).
	logLine func(line []byte)
	// waitInput blocks until the user sends anything or ctx ends.
	waitInput func(ctx context.Context) error
	// flush sends buffered output now (JSON transports buffer a command's
	// output until it ends).
	flush func()

	closed bool
	// Values keeps per-session state of application commands.
	Values map[string]any
	// confPath is the current element of "configure terminal".
	confPath string
}

func newSession(srv *Server, ctx context.Context, w io.Writer) *Session {
	return &Session{srv: srv, id: srv.nextID.Add(1), ctx: ctx, w: w, modes: []*Mode{TopMode}, Values: map[string]any{}}
}

// Context is the session's context: it ends when the client goes away or
// the server shuts down.
func (s *Session) Context() context.Context { return s.ctx }

// Server returns the server the session belongs to.
func (s *Session) Server() *Server { return s.srv }

// Write writes command output. Safe from any goroutine.
func (s *Session) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.w.Write(p)
}

// Printf writes formatted output.
func (s *Session) Printf(format string, args ...any) {
	fmt.Fprintf(s, format, args...)
}

// Flush sends the output so far to the client at once. Commands that may
// take the process (and the connection) down call it first.
func (s *Session) Flush() {
	if s.flush != nil {
		s.flush()
	}
}

// JSON reports whether the running command was given --json.
func (s *Session) JSON() bool { return s.json }

// Output writes v as indented JSON when the command was given --json, and
// calls text otherwise.
func (s *Session) Output(v any, text func(w io.Writer)) error {
	if s.json {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("console: json: %w", err)
		}
		s.Write(append(b, '\n'))
		return nil
	}
	text(s)
	return nil
}

// Mode returns the current mode.
func (s *Session) Mode() *Mode { return s.modes[len(s.modes)-1] }

// Push enters mode m; "exit" returns to the previous one.
func (s *Session) Push(m *Mode) { s.modes = append(s.modes, m) }

// Prompt is the prompt of the current mode.
func (s *Session) Prompt() string { return s.Mode().Prompt(s) }

// Close ends the session after the running command.
func (s *Session) Close() { s.closed = true }

// Closed reports whether the session has ended.
func (s *Session) Closed() bool { return s.closed }

// WaitInput blocks until the user types anything (a key on a terminal, a
// message on a websocket) or the session ends.
func (s *Session) WaitInput() error {
	if s.waitInput == nil {
		<-s.ctx.Done()
		return s.ctx.Err()
	}
	return s.waitInput(s.ctx)
}

// Execute runs one line in the current mode.
func (s *Session) Execute(line string) error {
	if s.closed {
		return ErrClosed
	}
	words, err := splitWords(line)
	if err != nil {
		return err
	}
	s.json = false
	kept := words[:0]
	for _, w := range words {
		if w == "--json" {
			s.json = true
			continue
		}
		kept = append(kept, w)
	}
	words = kept
	if len(words) == 0 {
		return nil
	}
	tree := s.Mode().Tree
	switch {
	case words[0] == "?" || strings.EqualFold(words[0], "help"):
		return s.help(tree, words[1:])
	case words[len(words)-1] == "?":
		return s.help(tree, words[:len(words)-1])
	case strings.EqualFold(words[0], "apply"):
		if s.json {
			words = append(words, "--json")
		}
		return s.apply(words[1:])
	case strings.EqualFold(words[0], "exit") && len(words) == 1:
		if len(s.modes) > 1 {
			s.modes = s.modes[:len(s.modes)-1]
			return nil
		}
		s.closed = true
		return nil
	}
	cmd, path, args, err := tree.Lookup(words)
	if err != nil {
		return err
	}
	if cmd.Run == nil {
		if len(args) > 0 {
			return fmt.Errorf("%w %q under %q", ErrUnknown, args[0], strings.Join(path, " "))
		}
		return s.help(tree, path)
	}
	// A goroutine dump names the session and the command it runs.
	pprof.SetGoroutineLabels(pprof.WithLabels(s.ctx, pprof.Labels(
		"mtev.console", strconv.FormatUint(s.id, 10), "mtev.console.command", strings.Join(path, " "))))
	defer pprof.SetGoroutineLabels(s.ctx)
	return cmd.Run(s, args)
}

func (s *Session) help(tree *Tree, words []string) error {
	lines, err := tree.helpLines(words)
	if err != nil {
		return err
	}
	if len(words) == 0 {
		lines = append(lines, fmt.Sprintf("  %-16s %s", "help", "this list; help WORDS describes a command"))
		exit := "leave this mode"
		if len(s.modes) == 1 {
			exit = "end the session"
		}
		lines = append(lines, fmt.Sprintf("  %-16s %s", "exit", exit))
		lines = append(lines, fmt.Sprintf("  %-16s %s", "apply", "apply NAME a..b|a,n..b|IP/mask|x,y COMMAND: run COMMAND per value, {NAME} replaced"))
	}
	return s.Output(lines, func(w io.Writer) {
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	})
}

// Complete returns the candidates for the last word of line in the
// current mode.
func (s *Session) Complete(line string) []string {
	words, err := splitWords(line)
	if err != nil {
		return nil
	}
	if line == "" || strings.HasSuffix(line, " ") || strings.HasSuffix(line, "\t") {
		words = append(words, "")
	}
	c := s.Mode().Tree.Complete(s, words)
	if len(words) == 1 {
		c = append(c, filterPrefix([]string{"help", "exit", "apply"}, words[0])...)
	}
	return c
}

// splitWords splits a line at blanks; double quotes group words and a
// backslash escapes the next character inside them.
func splitWords(line string) ([]string, error) {
	var words []string
	var b strings.Builder
	in, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			b.WriteByte(line[i])
		case c == '"':
			quoted = !quoted
			in = true
		case !quoted && (c == ' ' || c == '\t'):
			if in {
				words = append(words, b.String())
				b.Reset()
				in = false
			}
		default:
			b.WriteByte(c)
			in = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("console: unterminated quote")
	}
	if in {
		words = append(words, b.String())
	}
	return words, nil
}
