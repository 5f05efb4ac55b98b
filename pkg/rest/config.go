package rest

import (
	"fmt"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

// Section declares <rest>: the router's settings as attributes and
// libmtev's <acl> list. ACL attributes (including listener_<key>) are
// checked by ParseACL with file:line.
var Section = config.Section{
	Path: "rest",
	Doc:  "The HTTP/REST router: handler deadlines, limits, compression, and libmtev's ACLs (`<acl>` with `<rule>`s). See docs/http.md.",
	Element: config.Element{
		Attrs: []config.Attr{
			{Name: "deadline", Type: config.TypeDuration, Doc: "Default handler deadline of routes naming no eventer pool; a handler past its deadline is reported to the watchdog as a stall and answered 503. Empty: none."},
			{Name: "max_hung", Type: config.TypeInt, Default: "8", Doc: "Hung handlers of one pool at once before the stall is reported as hard (capture, kill, restart); negative never escalates."},
			{Name: "max_body", Type: config.TypeSize, Default: "64MiB", Doc: "Largest request body, after decoding; larger is answered 413."},
			{Name: "min_compress", Type: config.TypeSize, Default: "1KiB", Doc: "Smallest response body compressed when the client accepts gzip, deflate, zstd or lz4f."},
		},
		Children: []config.Element{{
			Name:     "acl",
			Repeated: true,
			Open:     true,
			Doc:      "An access list: attributes `type` (allow or deny: the default of its rules), matchers `url`, `user`, `auth`, `cn` (regular expressions), `ip` (CIDR list), `listener_<key>` (regular expression on the listener's config key); `<rule type=...>` children with the same matchers.",
		}},
	},
}

func init() { config.Register(Section) }

// Settings are the <rest> attributes.
type Settings struct {
	Deadline    time.Duration
	MaxHung     int
	MaxBody     int64
	MinCompress int
	ACL         *ACL
}

// ParseSettings reads <rest> (n may be invalid: the defaults).
func ParseSettings(n config.Node) (Settings, error) {
	s := Settings{MaxHung: 8, MaxBody: 64 << 20, MinCompress: 1024}
	if !n.Valid() {
		s.ACL = &ACL{}
		return s, nil
	}
	var err error
	if s.Deadline, err = n.Duration("@deadline", 0); err != nil {
		return s, fmt.Errorf("rest: %w", err)
	}
	mh, err := n.Int("@max_hung", 8)
	if err != nil {
		return s, fmt.Errorf("rest: %w", err)
	}
	s.MaxHung = int(mh)
	if s.MaxHung == 0 {
		s.MaxHung = -1
	}
	if s.MaxBody, err = n.Size("@max_body", 64<<20); err != nil {
		return s, fmt.Errorf("rest: %w", err)
	}
	mc, err := n.Size("@min_compress", 1024)
	if err != nil {
		return s, fmt.Errorf("rest: %w", err)
	}
	s.MinCompress = int(mc)
	if s.MinCompress == 0 {
		s.MinCompress = -1
	}
	if s.ACL, err = ParseACL(n); err != nil {
		return s, err
	}
	return s, nil
}
