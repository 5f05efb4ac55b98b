package rest

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	stdlog "log"
)

// ServerOptions are the limits and protocols of one HTTP listener.
type ServerOptions struct {
	// ReadHeaderTimeout bounds reading a request header (slowloris);
	// zero means 10 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request; zero: none.
	ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle that long; zero
	// means 60 s.
	IdleTimeout time.Duration
	// MaxHeaderBytes limits a request header; zero means 64 KiB. Go's
	// server answers 431 to a larger one.
	MaxHeaderBytes int
	// MaxConcurrent limits the requests served at once on this listener;
	// more are answered 503 with Retry-After. Zero: no limit.
	MaxConcurrent int
	// TLS, when set, serves HTTPS; its NextProtos decide whether h2 is
	// offered.
	TLS *tls.Config
	// H2C serves HTTP/2 without TLS (prior knowledge) beside HTTP/1.
	H2C bool
	// Config is the listener's <config> hash, seen by ACL matchers
	// listener_<key>.
	Config map[string]string
	// ErrorLog receives net/http's own errors; nil discards them.
	ErrorLog *stdlog.Logger
}

// Server serves HTTP on listeners handed to Serve and drains on
// Shutdown: the shape of a listener type's server.
type Server struct {
	srv *http.Server
	sem chan struct{}
}

// NewServer returns a server of h with the options.
func NewServer(h http.Handler, o ServerOptions) *Server {
	s := &Server{}
	if o.ReadHeaderTimeout == 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.MaxConcurrent > 0 {
		s.sem = make(chan struct{}, o.MaxConcurrent)
		h = s.limit(h)
	}
	if o.ErrorLog == nil {
		o.ErrorLog = stdlog.New(discard{}, "", 0)
	}
	cfg := o.Config
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		TLSConfig:         o.TLS,
		ErrorLog:          o.ErrorLog,
		BaseContext:       func(net.Listener) context.Context { return WithListenerConfig(context.Background(), cfg) },
		ConnContext:       connContext,
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	if o.TLS != nil {
		for _, np := range o.TLS.NextProtos {
			if np == "h2" {
				p.SetHTTP2(true)
			}
		}
	}
	if o.H2C {
		p.SetUnencryptedHTTP2(true)
	}
	s.srv.Protocols = p
	return s
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (s *Server) limit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.sem <- struct{}{}:
			defer func() { <-s.sem }()
			h.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			Error(w, http.StatusServiceUnavailable, "too many requests in progress (limit %s)", strconv.Itoa(cap(s.sem)))
		}
	})
}

// HTTP returns the underlying net/http server (for tests and tuning
// before Serve).
func (s *Server) HTTP() *http.Server { return s.srv }

// Serve accepts connections on ln until Shutdown. With TLS configured,
// ln must yield plain connections: Serve wraps them. It returns nil after
// Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	var err error
	if s.srv.TLSConfig != nil {
		err = s.srv.Serve(tls.NewListener(ln, s.srv.TLSConfig))
	} else {
		err = s.srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeConns serves the connections ln yields as they are: TLS
// connections already handshaken (control_dispatch hands its sniffed
// connections over this way). It returns nil after Shutdown.
func (s *Server) ServeConns(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, waits for requests in flight until ctx ends,
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	return err
}

// tlsConn is a connection carrying TLS that is not a *tls.Conn (a
// sniffed connection with its first bytes replayed).
type tlsConn interface {
	ConnectionState() tls.ConnectionState
	IsTLS() bool
}

type tlsKey struct{}

func connContext(ctx context.Context, c net.Conn) context.Context {
	if _, ok := c.(*tls.Conn); ok {
		return ctx
	}
	if tc, ok := c.(tlsConn); ok && tc.IsTLS() {
		st := tc.ConnectionState()
		return context.WithValue(ctx, tlsKey{}, &st)
	}
	return ctx
}
