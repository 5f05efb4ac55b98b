package rest

import (
	"context"
	"net/http"

	"github.com/coder/websocket"
)

// WebSocket turns a function into the handler of a websocket route
// (method MethodWebSocket): the upgrade is accepted (with the route's
// subprotocols offered; OriginPatterns as coder/websocket) and fn owns
// the connection until it returns, when the connection is closed. The
// route's auth runs before the upgrade (libmtev upgrades first and
// checks on the first message).
func WebSocket(opts *websocket.AcceptOptions, fn func(ctx context.Context, c *websocket.Conn, r *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return // Accept answered the client
		}
		defer c.CloseNow()
		fn(r.Context(), c, r)
		c.Close(websocket.StatusNormalClosure, "")
	})
}
