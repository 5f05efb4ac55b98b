package rest

import "github.com/mtev-supervise/mtev-supervise/pkg/hook"

// Hook points of the HTTP layer, with libmtev's names. Each receives the
// request's Exchange on the request's goroutine.
var (
	// PostRequest runs when a request's header has been read, before
	// routing (libmtev's http_post_request): Abort drops the connection,
	// Done means the hook answered the request itself (through
	// Exchange.Writer).
	PostRequest = hook.New[*Exchange]("http_post_request", "a request header was read, before routing; ABORT drops the connection, DONE means the hook answered")
	// ResponseStarting runs when the response status is decided, before
	// the header is sent; hooks may add headers (libmtev's
	// http_response_starting).
	ResponseStarting = hook.New[*Exchange]("http_response_starting", "the response header is about to be sent; hooks may add headers")
	// RequestComplete runs when a request is finished (libmtev's
	// http_request_complete).
	RequestComplete = hook.New[*Exchange]("http_request_complete", "a request finished")
	// RequestLog runs before the access-log line is written; anything but
	// Continue suppresses it (libmtev's http_request_log).
	RequestLog = hook.New[*Exchange]("http_request_log", "the access log line is about to be written; anything but CONTINUE suppresses it")
	// AuthDenied runs when a route's auth check refused a request; a hook
	// returning Done or Abort has answered it itself (libmtev's
	// rest_auth_denied); otherwise the client gets 403.
	AuthDenied = hook.New[*Exchange]("rest_auth_denied", "an auth check refused a request; DONE or ABORT: the hook answered it")
)

const (
	hookContinue = hook.Continue
	hookDone     = hook.Done
	hookAbort    = hook.Abort
)
