package console

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

// logType is the log outlet type through which "log connect" follows a
// facility: one facility "console/<session>" per following session.
const logType = "console"

var (
	followMu  sync.Mutex
	followers = map[string]*Session{}
)

type followSink struct{ id string }

func (f followSink) WriteLine(line []byte) error {
	followMu.Lock()
	s := followers[f.id]
	followMu.Unlock()
	if s == nil {
		return nil
	}
	if s.logLine != nil {
		s.logLine(line)
		return nil
	}
	_, err := s.Write(line)
	return err
}

func (followSink) Close() error { return nil }

func init() {
	log.Register(logType, log.Type{Async: true, Open: func(spec *log.Spec, _ log.Env) (log.Sink, error) {
		return followSink{id: spec.Params["session"]}, nil
	}})
	Register("show log", showLog, completeFacilities).Describe("show log [NAME [N]]: facilities, or the last N lines of a memory log")
	Register("log", nil, nil).Describe("connect|enable|disable|debug")
	Register("log connect", logConnect, completeFacilities).Describe("log connect FACILITY: follow it here until a key is pressed")
	Register("log enable", logToggle("enable", true), completeFacilities).Describe("log enable FACILITY")
	Register("log disable", logToggle("enable", false), completeFacilities).Describe("log disable FACILITY")
	Register("log debug", logToggle("debug", true), completeFacilities).Describe("log debug FACILITY: add the caller's file:line")
	Register("no", nil, nil).Describe("undo: no log enable|disable|debug FACILITY")
	Register("no log", nil, nil).Describe("enable|disable|debug")
	Register("no log enable", logToggle("enable", false), completeFacilities).Describe("no log enable FACILITY: disable it")
	Register("no log disable", logToggle("enable", true), completeFacilities).Describe("no log disable FACILITY: enable it")
	Register("no log debug", logToggle("debug", false), completeFacilities).Describe("no log debug FACILITY")
}

func needLogs(s *Session, what string) (*log.Graph, error) {
	if s.srv.opts.Logs == nil {
		return nil, unavailable(what)
	}
	return s.srv.opts.Logs, nil
}

func completeFacilities(s *Session, args []string) []string {
	g := s.srv.opts.Logs
	if g == nil || len(args) > 1 {
		return nil
	}
	var out []string
	for _, st := range g.Stats() {
		if !strings.HasPrefix(st.Name, logType+"/") && st.Name != logType {
			out = append(out, st.Name)
		}
	}
	return out
}

func showLog(s *Session, args []string) error {
	g, err := needLogs(s, "show log")
	if err != nil {
		return err
	}
	if len(args) == 0 {
		var out []log.Stats
		for _, st := range g.Stats() {
			if !strings.HasPrefix(st.Name, logType+"/") && st.Name != logType {
				out = append(out, st)
			}
		}
		return s.Output(out, func(w io.Writer) {
			for _, st := range out {
				state := "enabled"
				if !st.Enabled {
					state = "disabled"
				}
				if st.Debug {
					state += ",debug"
				}
				typ := st.Type
				if typ == "" {
					typ = "-"
				}
				fmt.Fprintf(w, "%-24s %-10s %-16s -> %s\n", st.Name, typ, state, strings.Join(st.Outlets, ", "))
			}
		})
	}
	if len(args) > 2 {
		return fmt.Errorf("console: usage: show log [NAME [N]]")
	}
	ring, ok := g.Sink(args[0]).(*log.Ring)
	if !ok {
		return fmt.Errorf("console: show log: %q is not a memory log", args[0])
	}
	n := 23
	if len(args) == 2 {
		v, err := strconv.Atoi(args[1])
		if err != nil || v < 1 {
			return fmt.Errorf("console: show log: %q is not a positive count", args[1])
		}
		n = v
	}
	last := ring.Last()
	from := uint64(0)
	if last >= uint64(n) {
		from = last - uint64(n) + 1
	}
	lines := ring.Since(from)
	type entry struct {
		Seq  uint64 `json:"seq"`
		Line string `json:"line"`
	}
	out := []entry{}
	for _, l := range lines {
		out = append(out, entry{l.Seq, strings.TrimRight(string(l.Data), "\n")})
	}
	return s.Output(out, func(w io.Writer) {
		for _, e := range out {
			fmt.Fprintf(w, "[%d] %s\n", e.Seq, e.Line)
		}
	})
}

func logToggle(what string, on bool) Func {
	return func(s *Session, args []string) error {
		g, err := needLogs(s, "log")
		if err != nil {
			return err
		}
		if len(args) != 1 {
			return fmt.Errorf("console: usage: [no] log enable|disable|debug FACILITY")
		}
		if _, ok := g.Lookup(args[0]); !ok {
			return fmt.Errorf("console: no log facility %q", args[0])
		}
		if what == "debug" {
			return g.SetDebug(args[0], on)
		}
		return g.SetEnabled(args[0], on)
	}
}

// logConnect follows a facility in the session until the user sends
// anything.
func logConnect(s *Session, args []string) error {
	g, err := needLogs(s, "log connect")
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return fmt.Errorf("console: usage: log connect FACILITY")
	}
	if _, ok := g.Lookup(args[0]); !ok {
		return fmt.Errorf("console: no log facility %q", args[0])
	}
	id := strconv.FormatUint(s.id, 10)
	name := logType + "/" + id
	format := log.FormatPlain
	if s.logLine != nil {
		format = log.FormatJSON
	}
	if _, ok := g.Lookup(name); !ok {
		err := g.Configure(log.Spec{Name: name, Type: logType, Format: format, Mode: log.ModeAsync,
			Overflow: log.Drop, Params: map[string]string{"session": id}})
		if err != nil {
			return err
		}
	}
	followMu.Lock()
	followers[id] = s
	followMu.Unlock()
	defer func() {
		followMu.Lock()
		delete(followers, id)
		followMu.Unlock()
	}()
	if err := g.Connect(args[0], name); err != nil {
		return err
	}
	defer g.Disconnect(args[0], name)
	if s.logLine == nil {
		s.Printf("following %s; press any key to stop\n", args[0])
	}
	s.WaitInput()
	return nil
}
