package builtin

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// followPoll is how often a followed memory outlet is looked at.
const followPoll = 250 * time.Millisecond

// logsWS serves /eventer/logs/<name>.ws?since=ID: a websocket that sends
// the outlet's lines as JSON messages ([{"idx","whence","line"}], one
// message per batch), first those after since, then new ones as they are
// written. Lines evicted before they were sent are reported as
// {"skipped": N}. The client sends nothing; the socket closes when either
// side goes.
func (s *server) logsWS(w http.ResponseWriter, r *http.Request) {
	ring, _, ok := s.ring(w, r, ".ws")
	if !ok {
		return
	}
	var next uint64 = 1
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			jsonError(w, http.StatusBadRequest, "since=%q: want a line index", v)
			return
		}
		next = n + 1
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	defer c.CloseNow()
	ctx := c.CloseRead(r.Context()) // ends when the client goes
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for {
		lines := ring.Since(next)
		if len(lines) > 0 {
			if first := lines[0].Seq; first > next {
				if err := send(ctx, c, map[string]uint64{"skipped": first - next}); err != nil {
					return
				}
			}
			batch := make([]LogLine, 0, len(lines))
			for _, l := range lines {
				batch = append(batch, LogLine{Idx: l.Seq, Whence: l.Time.UnixMilli(), Line: string(l.Data)})
			}
			if err := send(ctx, c, batch); err != nil {
				return
			}
			next = lines[len(lines)-1].Seq + 1
		}
		select {
		case <-ctx.Done():
			c.Close(websocket.StatusNormalClosure, "")
			return
		case <-tick.C:
		}
	}
}

func send(ctx context.Context, c *websocket.Conn, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return wsjson.Write(ctx, c, v)
}
