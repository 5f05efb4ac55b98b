package log

import (
	"errors"
	"fmt"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

// ConfigSection declares the <logs> section of the configuration. It is
// registered with pkg/config by this package's init.
var ConfigSection = config.Section{
	Path:     "logs",
	Repeated: true,
	Doc: "Log facilities and where their lines go. Each `<log>` defines or changes one facility; " +
		"one with a `type` writes output, one without forwards to its `<outlet>`s. " +
		"Built in: `stderr`, and `error`, `notice`, `debug` (disabled) forwarding to it.",
	Element: config.Element{
		Children: []config.Element{{
			Name:     "log",
			Repeated: true,
			Doc:      "One facility.",
			Attrs: []config.Attr{
				{Name: "name", Type: config.TypeString, Required: true, Doc: "Facility name; `a/b` forwards to `a` unless it has outlets or a type."},
				{Name: "type", Type: config.TypeString, Doc: "Outlet type: `stderr`, `file` (asynchronous), `file_synch`, `memory`, `journal`, or a registered one."},
				{Name: "path", Type: config.TypeString, Doc: "File path (`file`), directory (`journal`), or `lines[,bytes]` (`memory`)."},
				{Name: "format", Type: config.TypeEnum, Enum: []string{"plain", "json"}, Default: "plain", Doc: "How this facility's output is rendered."},
				{Name: "disabled", Type: config.TypeBool, Doc: "Disable (or, with false, enable) the facility."},
				{Name: "debug", Type: config.TypeBool, Doc: "Add the caller's file:line to each line."},
				{Name: "mode", Type: config.TypeEnum, Enum: []string{"default", "sync", "async"}, Default: "default", Doc: "Write in the caller (`sync`) or through a queue and writer goroutine (`async`)."},
				{Name: "overflow", Type: config.TypeEnum, Enum: []string{"block", "drop"}, Default: "block", Doc: "When an asynchronous queue is full: wait for room, or drop the line and count it."},
				{Name: "queue_bytes", Type: config.TypeSize, Doc: "Capacity of the asynchronous queue (default 1MiB)."},
				{Name: "rotate_bytes", Type: config.TypeSize, Doc: "Rotate a file before it would grow past this size."},
				{Name: "rotate_seconds", Type: config.TypeInt, Doc: "Rotate a file at each multiple of this many seconds since the epoch."},
				{Name: "retain_count", Type: config.TypeInt, Doc: "Keep at most this many rotated files."},
				{Name: "retain_bytes", Type: config.TypeSize, Doc: "Keep rotated files (or journal segments) up to this total size."},
				{Name: "retain_seconds", Type: config.TypeInt, Doc: "Remove rotated files (or journal segments) older than this."},
				{Name: "segment_bytes", Type: config.TypeSize, Doc: "Journal segment size."},
				{Name: "sync", Type: config.TypeBool, Doc: "Journal: make each line durable before the next."},
			},
			Children: []config.Element{{
				Name:     "outlet",
				Repeated: true,
				Doc:      "A facility this one forwards its lines to.",
				Attrs:    []config.Attr{{Name: "name", Type: config.TypeString, Required: true, Doc: "The target facility."}},
			}},
		}},
	},
}

func init() {
	config.Register(ConfigSection)
}

// ConfigureFrom applies the <logs> sections of cfg as one Configure call.
// Every error, in the configuration or in opening an output, names the
// file and line of the <log> element responsible and wraps both this
// package's sentinel and config.ErrInvalid.
func (g *Graph) ConfigureFrom(cfg *config.Config) error {
	specs, pos, err := SpecsFrom(cfg)
	if err != nil {
		return err
	}
	if err := g.Configure(specs...); err != nil {
		var se *specError
		p := config.Pos{}
		if errors.As(err, &se) {
			p = pos[se.name]
		}
		return &config.Error{Pos: p, Msg: err.Error(), Err: errors.Join(config.ErrInvalid, err)}
	}
	return nil
}

// SpecsFrom reads the <logs> sections of cfg into Specs, in document
// order, with the position of each <log> element by facility name.
func SpecsFrom(cfg *config.Config) ([]Spec, map[string]config.Pos, error) {
	sections, err := cfg.SectionAll(ConfigSection)
	if err != nil {
		return nil, nil, fmt.Errorf("log: configure: %w", err)
	}
	var specs []Spec
	pos := map[string]config.Pos{}
	for _, sec := range sections {
		for _, v := range sec.Children("log") {
			n := v.Node()
			bad := func(format string, args ...any) error {
				msg := fmt.Sprintf(format, args...)
				return &config.Error{Pos: n.Pos(), Msg: "log: " + msg, Err: errors.Join(config.ErrInvalid, ErrInvalid)}
			}
			s := Spec{
				Name:       v.String("@name"),
				Type:       v.String("@type"),
				Path:       v.String("@path"),
				QueueBytes: int(v.Size("@queue_bytes")),
			}
			if err := checkName(s.Name); err != nil {
				return nil, nil, bad("name %q: facility names are '/'-separated, with no empty part", s.Name)
			}
			if p, dup := pos[s.Name]; dup {
				return nil, nil, bad("facility %q is already defined at %s", s.Name, p)
			}
			pos[s.Name] = n.Pos()
			if v.String("@format") == "json" {
				s.Format = FormatJSON
			}
			s.Disabled = toggle(v, "disabled")
			s.Debug = toggle(v, "debug")
			switch v.String("@mode") {
			case "sync":
				s.Mode = ModeSync
			case "async":
				s.Mode = ModeAsync
			}
			if v.String("@overflow") == "drop" {
				s.Overflow = Drop
			}
			rotSec, retSec, retCount := v.Int("@rotate_seconds"), v.Int("@retain_seconds"), v.Int("@retain_count")
			if rotSec < 0 || retSec < 0 || retCount < 0 {
				return nil, nil, bad("facility %q: rotate_seconds, retain_seconds and retain_count must not be negative", s.Name)
			}
			s.File = FileOptions{
				RotateBytes: v.Size("@rotate_bytes"),
				RotateEvery: time.Duration(rotSec) * time.Second,
				RetainCount: int(retCount),
				RetainBytes: v.Size("@retain_bytes"),
				RetainAge:   time.Duration(retSec) * time.Second,
			}
			s.Journal = JournalOptions{
				SegmentBytes: v.Size("@segment_bytes"),
				MaxBytes:     s.File.RetainBytes,
				MaxAge:       s.File.RetainAge,
				Sync:         v.Bool("@sync"),
			}
			for _, o := range v.Children("outlet") {
				s.Outlets = append(s.Outlets, o.String("@name"))
			}
			specs = append(specs, s)
		}
	}
	return specs, pos, nil
}

// toggle reads an optional boolean attribute.
func toggle(v config.Values, attr string) Toggle {
	if _, ok := v.Node().Attr(attr); !ok {
		return Unset
	}
	if v.Bool("@" + attr) {
		return On
	}
	return Off
}
