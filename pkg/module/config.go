package module

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

// Section declares libmtev's <modules> section:
//
//	<modules directory="/opt/app/modules:/usr/lib/app">
//	  <generic image="hello" name="hello1" require_env="HELLO">
//	    <config><greeting>hi</greeting></config>
//	  </generic>
//	  <generic image="echo-module" name="echo" heartbeat="1s"/>
//	</modules>
var Section = config.Section{
	Path: "modules",
	Doc:  "Modules, in document order: compiled-in ones by image name, executables by path (or found on `directory`). Their lifecycle is onload, config, init, then post_init once all are initialized; a failure at any stage stops the start.",
	Element: config.Element{
		Attrs: []config.Attr{
			{Name: "directory", Doc: "Search path for executable module images: directories separated by `:` or `;`."},
		},
		Children: []config.Element{
			{Name: "config", Open: true, Doc: "Keys every module's hash starts from (a module's own `<config>` wins)."},
			{
				Name:     "generic",
				Repeated: true,
				Doc:      "One module instance.",
				Attrs: []config.Attr{
					{Name: "image", Required: true, Doc: "A compiled-in module's name, or an executable module: a path, or a file name found on the directory search path."},
					{Name: "name", Doc: "The instance name (default: the image). Unique."},
					{Name: "heartbeat", Type: config.TypeDuration, Default: "1s", Doc: "Executable modules: how often the host checks that the module is between calls."},
					{Name: "heartbeat_timeout", Type: config.TypeDuration, Default: "5s", Doc: "Executable modules: a heartbeat unanswered this long is a hang: reported, the process killed and started again."},
					{Name: "hook_timeout", Type: config.TypeDuration, Default: "1s", Doc: "Executable modules: the longest a hook invocation waits for the module before going on as if it returned CONTINUE."},
					{Name: "call_timeout", Type: config.TypeDuration, Default: "30s", Doc: "Executable modules: the longest config, init and post_init may take."},
					{Name: "restart_backoff", Type: config.TypeDuration, Default: "100ms", Doc: "Executable modules: the first delay before a restart; it doubles (with jitter) up to restart_backoff_max and starts over after a run that lasted longer than that."},
					{Name: "restart_backoff_max", Type: config.TypeDuration, Default: "30s", Doc: "Executable modules: the longest delay between restarts."},
				},
				Children: []config.Element{{Name: "config", Open: true, Doc: "The module's key/value settings, one child element per key."}},
			},
		},
	},
}

func init() { config.Register(Section) }

// processAttrs are the attributes that only executable modules read.
var processAttrs = []string{"heartbeat", "heartbeat_timeout", "hook_timeout", "call_timeout", "restart_backoff", "restart_backoff_max"}

// Spec is one configured module instance.
type Spec struct {
	Image string
	Name  string
	// Path is the executable of a module in another process; empty for
	// a compiled-in one.
	Path   string
	Config map[string]string
	Pos    config.Pos // of the <generic> element
	// keyPos places each key of Config, for KeyError messages.
	keyPos map[string]config.Pos
	Process
}

// Process tunes the watching of a module in another process.
type Process struct {
	Heartbeat, HeartbeatTimeout, HookTimeout, CallTimeout time.Duration
	RestartBackoff, RestartBackoffMax                     time.Duration
}

// fill sets the zero fields to the section's defaults, for Specs built
// in code.
func (p *Process) fill() {
	def := func(d *time.Duration, v string) {
		if *d <= 0 {
			*d, _ = config.ParseDuration(v)
		}
	}
	var attrs []config.Attr
	for _, c := range Section.Children {
		if c.Name == "generic" {
			attrs = c.Attrs
		}
	}
	for _, a := range attrs {
		switch a.Name {
		case "heartbeat":
			def(&p.Heartbeat, a.Default)
		case "heartbeat_timeout":
			def(&p.HeartbeatTimeout, a.Default)
		case "hook_timeout":
			def(&p.HookTimeout, a.Default)
		case "call_timeout":
			def(&p.CallTimeout, a.Default)
		case "restart_backoff":
			def(&p.RestartBackoff, a.Default)
		case "restart_backoff_max":
			def(&p.RestartBackoffMax, a.Default)
		}
	}
	p.RestartBackoffMax = max(p.RestartBackoffMax, p.RestartBackoff)
}

// Specs reads the <modules> section: every active <generic>, in document
// order. Errors carry the file and line of the element responsible: an
// unknown image, a duplicate name, a process attribute on a compiled-in
// module, an executable that is missing or not executable.
func Specs(cfg *config.Config) ([]Spec, error) {
	v, err := cfg.Section(Section)
	if err != nil {
		return nil, err
	}
	dirs := splitPath(v.String("@directory"))
	base := ""
	if n := v.Node(); n.Valid() {
		base = filepath.Dir(n.Pos().File)
	}
	var out []Spec
	var errs []error
	seen := map[string]config.Pos{}
	for _, g := range v.Children("generic") {
		n := g.Node()
		s := Spec{Image: g.String("@image"), Name: g.String("@name"), Pos: n.Pos()}
		if s.Name == "" {
			s.Name = s.Image
		}
		if first, dup := seen[s.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: module %s: %w (first at %s)", s.Pos, s.Name, ErrDuplicate, first))
			continue
		}
		seen[s.Name] = s.Pos
		if _, ok := lookup(s.Image); ok {
			for _, a := range processAttrs {
				if _, set := n.Attr(a); set {
					errs = append(errs, fmt.Errorf("%s: module %s: %s applies to executable modules only (%s is compiled in)", s.Pos, s.Name, a, s.Image))
				}
			}
		} else {
			p, err := findExecutable(s.Image, dirs, base)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: module %s: image %s: %w", s.Pos, s.Name, s.Image, err))
				continue
			}
			s.Path = p
			s.Process = Process{
				Heartbeat:         g.Duration("@heartbeat"),
				HeartbeatTimeout:  g.Duration("@heartbeat_timeout"),
				HookTimeout:       g.Duration("@hook_timeout"),
				CallTimeout:       g.Duration("@call_timeout"),
				RestartBackoff:    g.Duration("@restart_backoff"),
				RestartBackoffMax: g.Duration("@restart_backoff_max"),
			}
			if s.Heartbeat <= 0 || s.HeartbeatTimeout <= 0 || s.HookTimeout <= 0 || s.CallTimeout <= 0 || s.RestartBackoff <= 0 || s.RestartBackoffMax < s.RestartBackoff {
				errs = append(errs, fmt.Errorf("%s: module %s: durations must be positive and restart_backoff_max at least restart_backoff", s.Pos, s.Name))
				continue
			}
		}
		if s.Config, err = n.Hash(); err != nil {
			errs = append(errs, fmt.Errorf("%s: module %s: config: %w", s.Pos, s.Name, err))
			continue
		}
		s.keyPos = map[string]config.Pos{}
		for k := range s.Config {
			if kn, ok, _ := n.Find("config/" + k); ok {
				s.keyPos[k] = kn.Pos()
			}
		}
		out = append(out, s)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("module: config: %w", errors.Join(errs...))
	}
	return out, nil
}

func splitPath(s string) []string {
	var out []string
	for _, d := range strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == ';' }) {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	return out
}

// findExecutable resolves an image that is not compiled in: a name with a
// '/' is a path (relative to the configuration file's directory); a bare
// name is looked for in each directory of the search path.
func findExecutable(image string, dirs []string, base string) (string, error) {
	var candidates []string
	if strings.ContainsRune(image, '/') {
		p := image
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		candidates = []string{p}
	} else {
		for _, d := range dirs {
			if !filepath.IsAbs(d) {
				d = filepath.Join(base, d)
			}
			candidates = append(candidates, filepath.Join(d, image))
		}
	}
	if len(candidates) == 0 {
		return "", fmt.Errorf("%w: not compiled in (compiled in: %s) and no directory to find an executable in", ErrUnknownImage, strings.Join(Images(), ", "))
	}
	for _, p := range candidates {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%w: %s is not an executable file", ErrUnknownImage, p)
		}
		return filepath.Abs(p)
	}
	return "", fmt.Errorf("%w: not compiled in and not found (looked for %s)", ErrUnknownImage, strings.Join(candidates, ", "))
}
