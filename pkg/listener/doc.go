// Package listener opens the sockets of libmtev's <listeners> section and
// runs a protocol server on each: a registry of listener types, native
// TLS on crypto/tls with certificates replaced on reload, the
// control_dispatch sniffer, inherited sockets (systemd socket
// activation) and graceful stop.
//
// # Configuration
//
// Parse reads every //listeners//listener:
//
//	<listeners>
//	  <sslconfig><certificate_file>c.pem</certificate_file><key_file>k.pem</key_file></sslconfig>
//	  <config><idle_timeout>30000</idle_timeout></config>
//	  <listener type="control_dispatch" address="*" port="8080" backlog="64">
//	    <config><document_root>/srv/www</document_root></config>
//	  </listener>
//	  <listener type="http_rest_api" address="::1" port="8443" ssl="on"/>
//	  <listener type="http_rest_api" address="/run/app.sock"/>
//	</listeners>
//
// Attributes (type, address, port, ssl, backlog, name) are inherited from
// the nearest enclosing element that has them; <config> hashes merge from
// the top down (deeper keys win, <config inherit="id"> as in pkg/config);
// <sslconfig> merges the same way and is read only with ssl on. address
// is "*" or "inet:*" (0.0.0.0), "inet6:*" (::), an IP literal, or an
// absolute unix socket path; hostnames are refused. Unknown attributes,
// elements and sslconfig keys, a bad port or address, an unknown type, an
// unreadable or mismatched certificate or key are errors naming the
// listener's file:line, at start and at reload: never a listener that is
// silently not there. See NewTLS for <sslconfig>, HTTPOptions for the
// HTTP <config> keys.
//
// # Types
//
// Register adds a type: a Factory building a Server (Serve(ln),
// Shutdown(ctx)) from the Spec. Built in: http_rest_api (HTTP/1.x, h2
// over TLS by ALPN, h2c when configured, served by Spec.Router) and
// control_dispatch (one port: with TLS, ALPN h2 or http/1.1 goes straight
// to HTTP; otherwise the first four bytes decide, see Sniff: HTTP
// methods go to REST, CAPA is answered with the capabilities document
// and the connection closed, anything else is closed). mtev_console is
// registered by the console.
//
// # Sockets
//
// A listener first takes a socket passed by the service manager
// (LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES; mtev-supervise run --listen
// passes its sockets so) whose name is the listener's name attribute or
// whose address is the listener's (a socket on every address, IPv4 or
// dual-stack IPv6, matches a listener on every address); otherwise it opens
// its own with SO_REUSEADDR and the backlog (default 5, as libmtev). An
// existing unix socket at the path is replaced; any other file there is
// an error (libmtev unlinks regular files too). The Accept hook point
// sees every accepted connection first; Abort closes it. Passed descriptors
// that are not listening sockets (a UDP socket, a memfd kept in
// mtev-supervise's descriptor store) are handed over by name with
// Inherited.
//
// # Threads
//
// A Set runs one goroutine per listener for its Serve, plus what the
// protocol server starts. Start, Reload and Shutdown are serialized by
// the Set and must not be called from a handler of the same Set (they
// wait for the listeners to drain). Shutdown stops accepting, waits for
// requests in flight until its context ends, then closes what is left.
package listener
