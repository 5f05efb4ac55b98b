package cli

import (
	"flag"
	"fmt"
	"strings"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// Sockets held by the supervisor: the repeatable --listen NAME=ADDR flag,
// and its form in a configuration file, <listen name="NAME">ADDR</listen>
// children of <run> (a repeatable flag is not an attribute).

// listenFlag is --listen: each use adds a socket.
type listenFlag struct{ l *[]watchdog.Listen }

func (f listenFlag) String() string {
	if f.l == nil {
		return ""
	}
	var s []string
	for _, l := range *f.l {
		s = append(s, l.String())
	}
	return strings.Join(s, " ")
}

func (f listenFlag) Set(v string) error {
	l, err := watchdog.ParseListen(v)
	if err != nil {
		return err
	}
	return addListen(f.l, l)
}

// repeated marks a flag that may be given more than once: it is a child
// element of <run>, not an attribute.
func (listenFlag) repeated() {}

func addListen(ls *[]watchdog.Listen, l watchdog.Listen) error {
	for _, o := range *ls {
		if o.Name == l.Name {
			return fmt.Errorf("listen name %q given twice", l.Name)
		}
	}
	*ls = append(*ls, l)
	return nil
}

const listenDoc = "a socket the supervisor opens before the first start and passes to every child (systemd's LISTEN_FDS convention), NAME=tcp://HOST:PORT, udp://HOST:PORT or unix:///PATH; repeatable"

const fdstoreMaxDoc = "with --notify: how many descriptors children may keep in the supervisor with FDSTORE=1, passed to the next child (0: none)"

// listenElement declares <listen name="NAME">ADDR</listen>.
var listenElement = config.Element{
	Name: "listen", Type: config.TypeString, Repeated: true,
	Doc: "a socket the supervisor holds for every child (like --listen): tcp://HOST:PORT, udp://HOST:PORT or unix:///PATH",
	Attrs: []config.Attr{{Name: "name", Type: config.TypeString, Required: true,
		Doc: "its name in LISTEN_FDNAMES"}},
}

// isRepeated reports whether a flag is repeatable (a child element of
// <run>, not an attribute).
func isRepeated(f *flag.Flag) bool {
	_, ok := f.Value.(interface{ repeated() })
	return ok
}

// applyListen sets --listen from the <listen> children of n, unless the
// command line gave it (flags win). Problems name the element's file:line.
func applyListen(n config.Node, fs *flag.FlagSet, set map[string]bool) error {
	if set["listen"] {
		return nil
	}
	fl := fs.Lookup("listen")
	if fl == nil {
		return nil
	}
	ls := fl.Value.(listenFlag).l
	var errs []string
	for _, ch := range n.Children() {
		if ch.Tag() != "listen" {
			continue
		}
		name, _ := ch.Attr("name")
		l, err := watchdog.ParseListen(name + "=" + ch.Text())
		if err == nil {
			err = addListen(ls, l)
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: <listen name=%q>: %v", ch.Pos(), name, err))
		}
	}
	if len(errs) > 0 {
		return usageError("%s", strings.Join(errs, "\n"))
	}
	return nil
}
