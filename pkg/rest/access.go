package rest

import (
	"net"
	"strconv"
	"time"
)

// finish ends a request: closes the response if the handler returned,
// runs the completion hooks and writes the access log line.
func (rt *Router) finish(x *Exchange) {
	if !x.rw.guarded {
		x.rw.close()
	}
	RequestComplete.Invoke(x)
	if rt.access == nil || !rt.access.Enabled() {
		return
	}
	if RequestLog.Invoke(x) != hookContinue {
		return
	}
	r := x.Request
	ip := r.RemoteAddr
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	if ip == "" || ip == "@" {
		ip = "unix"
	}
	user := x.User
	if user == "" {
		user = "-"
	}
	var in int64
	if x.body != nil {
		in = x.body.n.Load()
	}
	out := x.rw.written.Load()
	lat := time.Since(x.Start)
	status := x.Status
	uri := r.URL.Path
	qs := r.URL.RawQuery
	b := make([]byte, 0, 160)
	b = append(b, ip...)
	b = append(b, " - "...)
	b = append(b, user...)
	b = append(b, " ["...)
	b = x.Start.UTC().AppendFormat(b, "02/Jan/2006:15:04:05 -0000")
	b = append(b, "] "...)
	b = strconv.AppendUint(b, uint64(x.ID), 10)
	b = append(b, `: "`...)
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, uri...)
	if qs != "" {
		b = append(b, '?')
		b = append(b, qs...)
	}
	b = append(b, ' ')
	b = append(b, r.Proto...)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, out, 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, in, 10)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, float64(lat.Microseconds())/1000, 'f', 3, 64)
	rt.access.Log().
		Str("ip", ip).Str("user", user).Str("method", r.Method).Str("protocol", r.Proto).
		Str("uri", uri).Str("querystring", qs).Int("status", status).
		Float64("latency", lat.Seconds()).Int64("bytes_written", out).Int64("bytes_read", in).
		Str("route", x.Route).
		Msg(string(b))
}
