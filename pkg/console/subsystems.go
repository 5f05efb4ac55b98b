package console

import (
	"io"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
)

// Listing is what a subsystem shows for a "show" command: the value its
// --json form prints and the text of its plain form.
type Listing struct {
	Value any
	Text  func(w io.Writer) error
}

func init() {
	Register("show hooks", showHooks, nil).Describe("show hooks [NAME]: the hook points and what is attached, in the order they run")
	Register("show modules", showModules, nil).Describe("the modules of <modules>: kind, process and state")
	Register("show cluster", showCluster, completeCluster).Describe("show cluster [NAME]: the clusters, their nodes and what each gossips")
}

func showHooks(s *Session, args []string) error {
	pts := hook.Points()
	if len(args) == 1 {
		var one []hook.Info
		for _, p := range pts {
			if p.Name == args[0] {
				one = append(one, p)
			}
		}
		pts = one
	}
	var err error
	out := s.Output(pts, func(w io.Writer) { err = hook.Show(w, args) })
	if out != nil {
		return out
	}
	return err
}

func showListing(s *Session, what string, get func() (Listing, error)) error {
	if get == nil {
		return unavailable(what)
	}
	l, err := get()
	if err != nil {
		return err
	}
	var terr error
	if err := s.Output(l.Value, func(w io.Writer) { terr = l.Text(w) }); err != nil {
		return err
	}
	return terr
}

func showModules(s *Session, args []string) error {
	return showListing(s, "show modules", s.srv.opts.Runtime.Modules)
}

func showCluster(s *Session, args []string) error {
	f := s.srv.opts.Runtime.Clusters
	if f == nil {
		return unavailable("show cluster")
	}
	return showListing(s, "show cluster", func() (Listing, error) { return f(args) })
}

func completeCluster(s *Session, args []string) []string {
	if f := s.srv.opts.Runtime.ClusterNames; f != nil && len(args) <= 1 {
		return f()
	}
	return nil
}
