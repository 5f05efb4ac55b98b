package rest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
)

// Sentinel errors of route registration.
var (
	// ErrRoute: a route is malformed (empty method, base not between
	// slashes, bad expression, nil handler, unknown pool or queue).
	ErrRoute = errors.New("bad route")
	// ErrDuplicate: a route with the same method, base and expression is
	// already registered.
	ErrDuplicate = errors.New("duplicate route")
)

// MethodWebSocket is the method of a websocket route (libmtev's "WS"): it
// matches GET requests asking for a websocket upgrade, and only those.
const MethodWebSocket = "WS"

// AuthFunc decides whether a request may run a route. It may record who
// the client is with SetUser before returning. Returning false answers
// 403 (or what the rest_auth_denied hook writes).
type AuthFunc func(r *http.Request) bool

// Route is one registration: libmtev's mtev_http_rest_register with its
// options.
type Route struct {
	// Method is an HTTP method ("GET", "POST", ...) or MethodWebSocket.
	Method string
	// Base is a path prefix beginning and ending with '/'. The longest
	// registered base that prefixes the request path is chosen; shorter
	// bases are not consulted (libmtev's rule).
	Base string
	// Expr is a regular expression (RE2) matched against the rest of the
	// path after Base, anchored at both ends. Its groups are the
	// request's Captures.
	Expr string
	// Handler serves the request. For a websocket route see WebSocket.
	Handler http.Handler
	// Name identifies the route in stalls, logs and labels; default
	// Base+"("+Expr+")".
	Name string
	// Auth checks the request; nil means the router's ACL (libmtev's
	// default since it added mtev_http_rest_client_cert_auth).
	Auth AuthFunc
	// Pool names the eventer pool whose timeout is the route's default
	// deadline, and labels the handler goroutine.
	Pool string
	// Queue names an eventer job queue: the handler runs as a job there
	// (its concurrency then bounds the route). A full backlog answers
	// 503.
	Queue string
	// Deadline is how long the handler may run before it is reported as
	// a stall. Zero: the pool's timeout, or the router's default;
	// negative: no deadline.
	Deadline time.Duration
	// NoCompress turns response compression off for this route.
	NoCompress bool
}

type route struct {
	Route
	re       *regexp.Regexp
	deadline time.Duration
	queue    *eventer.Queue
	pool     string
	hung     *poolHung
}

// Options configure a Router. The zero value works: no deadlines, no
// stall reports, no access log, allow-all when no ACL is set.
type Options struct {
	// Eventer resolves Route.Pool and Route.Queue; nil: routes naming a
	// pool or queue are refused.
	Eventer *eventer.System
	// Deadline is the default handler deadline of routes naming no pool
	// and setting none; zero: no deadline.
	Deadline time.Duration
	// OnStall receives a report when a handler passes its deadline, and
	// one with Hard set when the hung handlers of one pool exceed MaxHung.
	// It runs on the request's serving goroutine and must not block for
	// long. Nil: stalls are still answered (503) but not reported.
	OnStall func(Stall)
	// MaxHung is how many handlers of one pool may be hung at once before
	// the stall is reported as hard (kill and restart). Zero means 8;
	// negative never escalates.
	MaxHung int
	// Logs is where the access log goes (facility "http/access"); nil: no
	// access log.
	Logs *log.Graph
	// MinCompress is the smallest response body compressed; zero means
	// 1024 bytes, negative compresses everything.
	MinCompress int
	// MaxBody limits request bodies (after decoding); an overflowing
	// request is answered 413. Zero means 64 MiB; negative: no limit.
	MaxBody int64
	// Version and Features go into the capabilities document.
	Version  string
	Features map[string]string
}

// Router is an http.Handler routing as libmtev's REST layer: method, base
// prefix, anchored regular expression. It is safe for concurrent use;
// routes may be added while serving.
type Router struct {
	opts    Options
	mu      sync.RWMutex
	bases   map[string][]*route
	sorted  []string // bases, longest first
	acl     atomic.Pointer[ACL]
	hungMu  sync.Mutex
	hung    map[string]*poolHung
	access  *log.Facility
	reqID   atomic.Uint32
	capa    atomic.Pointer[capaState]
	minGz   int
	maxBody int64
}

// New returns an empty Router.
func New(opts Options) *Router {
	r := &Router{opts: opts, bases: map[string][]*route{}, hung: map[string]*poolHung{}}
	if opts.MaxHung == 0 {
		r.opts.MaxHung = 8
	}
	switch {
	case opts.MinCompress == 0:
		r.minGz = 1024
	case opts.MinCompress < 0:
		r.minGz = 0
	default:
		r.minGz = opts.MinCompress
	}
	switch {
	case opts.MaxBody == 0:
		r.maxBody = 64 << 20
	case opts.MaxBody < 0:
		r.maxBody = 0
	default:
		r.maxBody = opts.MaxBody
	}
	if opts.Logs != nil {
		r.access = opts.Logs.Facility("http/access")
	}
	r.capa.Store(&capaState{})
	return r
}

// Handle registers h for method under base with the expression expr,
// with default options.
func (rt *Router) Handle(method, base, expr string, h http.Handler) error {
	return rt.Route(Route{Method: method, Base: base, Expr: expr, Handler: h})
}

// HandleFunc is Handle for a function.
func (rt *Router) HandleFunc(method, base, expr string, f func(http.ResponseWriter, *http.Request)) error {
	return rt.Handle(method, base, expr, http.HandlerFunc(f))
}

// Route registers a route with its options.
func (rt *Router) Route(spec Route) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("rest: route %s %s%s: %w: %s", spec.Method, spec.Base, spec.Expr, ErrRoute, fmt.Sprintf(format, args...))
	}
	if spec.Method == "" || strings.ToUpper(spec.Method) != spec.Method || strings.ContainsAny(spec.Method, " \t/") {
		return bad("method must be an upper-case token")
	}
	if !strings.HasPrefix(spec.Base, "/") || !strings.HasSuffix(spec.Base, "/") {
		return bad("base must begin and end with '/'")
	}
	if spec.Handler == nil {
		return bad("nil handler")
	}
	re, err := regexp.Compile("^(?:" + spec.Expr + ")$")
	if err != nil {
		return bad("%v", err)
	}
	if spec.Name == "" {
		spec.Name = spec.Base + "(" + spec.Expr + ")"
	}
	r := &route{Route: spec, re: re, deadline: spec.Deadline}
	if spec.Deadline == 0 {
		r.deadline = rt.opts.Deadline
	}
	if spec.Pool != "" || spec.Queue != "" {
		if rt.opts.Eventer == nil {
			return bad("pool or queue named without an eventer")
		}
	}
	if spec.Pool != "" {
		p := rt.opts.Eventer.Pool(spec.Pool)
		if p == nil {
			return bad("unknown eventer pool %q", spec.Pool)
		}
		if spec.Deadline == 0 {
			r.deadline = p.Timeout()
		}
	}
	if spec.Queue != "" {
		q := rt.opts.Eventer.Queue(spec.Queue)
		if q == nil {
			return bad("unknown job queue %q", spec.Queue)
		}
		r.queue = q
	}
	r.pool = spec.Pool
	if r.pool == "" {
		r.pool = spec.Queue
	}
	if r.pool == "" {
		r.pool = "default"
	}
	if spec.Method == MethodWebSocket {
		r.deadline = 0 // a websocket lives as long as its peer wants
	}
	if r.deadline < 0 {
		r.deadline = 0
	}
	r.hung = rt.poolHung(r.pool)

	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, o := range rt.bases[spec.Base] {
		if o.Method == spec.Method && o.Expr == spec.Expr {
			return fmt.Errorf("rest: route %s %s%s: %w", spec.Method, spec.Base, spec.Expr, ErrDuplicate)
		}
	}
	if _, ok := rt.bases[spec.Base]; !ok {
		rt.sorted = append(rt.sorted, spec.Base)
		sort.SliceStable(rt.sorted, func(i, j int) bool { return len(rt.sorted[i]) > len(rt.sorted[j]) })
	}
	rt.bases[spec.Base] = append(rt.bases[spec.Base], r)
	return nil
}

// Endpoint describes a registered route (libmtev's /mtev/rest.json).
type Endpoint struct {
	Method     string `json:"method"`
	Expression string `json:"expression"`
}

// Endpoints lists the routes by base, in registration order.
func (rt *Router) Endpoints() map[string][]Endpoint {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	out := map[string][]Endpoint{}
	for b, rs := range rt.bases {
		for _, r := range rs {
			out[b] = append(out[b], Endpoint{Method: r.Method, Expression: r.Expr})
		}
	}
	return out
}

// match finds the longest base prefixing path and the rules of that base
// whose expression matches the remainder.
func (rt *Router) match(path string) (matched []*route, caps [][]string) {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	for _, b := range rt.sorted {
		if !strings.HasPrefix(path, b) {
			continue
		}
		rest := path[len(b):]
		for _, r := range rt.bases[b] {
			if m := r.re.FindStringSubmatch(rest); m != nil {
				matched = append(matched, r)
				caps = append(caps, m[1:])
			}
		}
		return matched, caps
	}
	return nil, nil
}

type ctxKey int

const exchangeKey ctxKey = 0

// Exchange is the router's state of one request, reachable from the
// request's context (FromRequest). Hooks receive it.
type Exchange struct {
	Request  *http.Request
	Writer   http.ResponseWriter
	Route    string // the matched route's name; "" before routing
	Captures []string
	User     string            // set by an auth check (SetUser)
	Auth     string            // the name of the auth method that set User
	Listener map[string]string // the listener's <config> hash (ACL listener_<key>)
	Status   int
	ID       uint32
	Start    time.Time
	rw       *respWriter
	body     *bodyReader
}

// FromRequest returns the request's Exchange, or nil outside a Router.
func FromRequest(r *http.Request) *Exchange {
	x, _ := r.Context().Value(exchangeKey).(*Exchange)
	return x
}

// Captures returns the capture groups of the route that matched r (unset
// groups are ""), or nil.
func Captures(r *http.Request) []string {
	if x := FromRequest(r); x != nil {
		return x.Captures
	}
	return nil
}

// SetUser records the authenticated user of r and the auth method that
// established it (ACL matchers user and auth).
func SetUser(r *http.Request, user, auth string) {
	if x := FromRequest(r); x != nil {
		x.User, x.Auth = user, auth
	}
}

// listenerKey carries the listener config hash from the server.
type listenerKey struct{}

// WithListenerConfig returns a context carrying a listener's <config>
// hash, which ACL matchers listener_<key> test. Servers set it on every
// connection's base context.
func WithListenerConfig(ctx context.Context, cfg map[string]string) context.Context {
	return context.WithValue(ctx, listenerKey{}, cfg)
}

func listenerConfig(ctx context.Context) map[string]string {
	m, _ := ctx.Value(listenerKey{}).(map[string]string)
	return m
}

// ServeHTTP routes r.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		if st, ok := r.Context().Value(tlsKey{}).(*tls.ConnectionState); ok {
			r.TLS = st
		}
	}
	x := &Exchange{Request: r, ID: rt.reqID.Add(1), Start: time.Now(), Listener: listenerConfig(r.Context())}
	rw := &respWriter{rw: w, x: x, rt: rt}
	x.rw = rw
	x.Writer = rw
	r = r.WithContext(context.WithValue(r.Context(), exchangeKey, x))
	x.Request = r
	defer rt.finish(x)
	if rt.maxBody > 0 && r.ContentLength > rt.maxBody {
		rw.Header().Set("Connection", "close")
		Error(rw, http.StatusRequestEntityTooLarge, "request body of %d bytes exceeds the limit of %d", r.ContentLength, rt.maxBody)
		return
	}
	if err := decodeBody(r); err != nil {
		Error(rw, http.StatusUnsupportedMediaType, "%v", err)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		x.body = &bodyReader{rc: r.Body, limit: rt.maxBody}
		r.Body = x.body
	}
	if res := PostRequest.Invoke(x); res == hookAbort {
		panic(http.ErrAbortHandler)
	} else if res == hookDone {
		return
	}

	routes, caps := rt.match(r.URL.Path)
	wsReq := isWebSocket(r)
	var chosen *route
	var capsOf []string
	for i, ro := range routes {
		if ro.Method == MethodWebSocket {
			if wsReq {
				chosen, capsOf = ro, caps[i]
				break
			}
			continue
		}
		if ro.Method == r.Method && !wsReq {
			chosen, capsOf = ro, caps[i]
			break
		}
	}
	if chosen == nil && r.Method == http.MethodHead {
		for i, ro := range routes {
			if ro.Method == http.MethodGet {
				chosen, capsOf = ro, caps[i]
				break
			}
		}
	}
	if chosen == nil {
		if len(routes) == 0 {
			Error(rw, http.StatusNotFound, "not found")
			return
		}
		allow := allowOf(routes)
		rw.Header().Set("Allow", allow)
		if r.Method == http.MethodOptions {
			rw.WriteHeader(http.StatusOK)
			return
		}
		Error(rw, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
		return
	}
	x.Route = chosen.Name
	x.Captures = capsOf
	auth := chosen.Auth
	if auth == nil {
		auth = rt.aclAuth
	}
	if !auth(r) {
		if AuthDenied.Invoke(x) == hookContinue {
			Error(rw, http.StatusForbidden, "denied")
		}
		return
	}
	var h http.Handler = chosen.Handler
	if !chosen.NoCompress && chosen.Method != MethodWebSocket {
		rw.negotiate(r)
	}
	if chosen.deadline > 0 || chosen.queue != nil {
		rt.supervise(chosen, rw, r, h)
		return
	}
	h.ServeHTTP(rw, r)
}

func allowOf(routes []*route) string {
	seen := map[string]bool{http.MethodOptions: true}
	ms := []string{http.MethodOptions}
	for _, ro := range routes {
		m := ro.Method
		if m == MethodWebSocket {
			m = http.MethodGet
		}
		for _, mm := range []string{m, map[bool]string{true: http.MethodHead}[m == http.MethodGet]} {
			if mm != "" && !seen[mm] {
				seen[mm] = true
				ms = append(ms, mm)
			}
		}
	}
	return strings.Join(ms, ", ")
}

func isWebSocket(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHasToken(r.Header, "Connection", "upgrade") && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
