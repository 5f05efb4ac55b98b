package listener

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
)

// TLS is a listener's TLS setup: a server tls.Config whose certificate,
// client CAs and versions can be replaced while serving (Update), so a
// reload changes them for new handshakes without touching open
// connections.
type TLS struct {
	cur  atomic.Pointer[tls.Config]
	base *tls.Config
}

// NewTLS builds the TLS setup from libmtev's <sslconfig> keys:
//
//	certificate_file (or certificate), key_file (or key): paths, or PEM
//	    text when the value holds a newline
//	ca_chain (ca_file is an alias; libmtev ignores it): CAs that client
//	    certificates must chain to
//	client_cert: off, optional or required (default: optional with a
//	    ca_chain, off without; libmtev always requests one)
//	layer: libmtev's "proto:opts" version spec; the default is TLS 1.2
//	    and up
//	alpn (or npn): protocols offered, default "h2,http/1.1"; "none"
//	ciphers: only "DEFAULT" (Go chooses its suites)
//	optional_no_ca: true accepts any client certificate without
//	    verifying it
func NewTLS(ssl map[string]string) (*TLS, error) {
	pick := func(keys ...string) string {
		for _, k := range keys {
			if v := strings.TrimSpace(ssl[k]); v != "" {
				return v
			}
		}
		return ""
	}
	certV, keyV := pick("certificate_file", "certificate"), pick("key_file", "key")
	if certV == "" || keyV == "" {
		return nil, errors.New("certificate_file and key_file are required with ssl on")
	}
	certPEM, err := pemOrFile(certV)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	keyPEM, err := pemOrFile(keyV)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate and key: %w", err)
	}
	cfg := &tls.Config{
		Certificates:           []tls.Certificate{cert},
		MinVersion:             tls.VersionTLS12,
		SessionTicketsDisabled: true, // as libmtev
	}
	min, max, err := parseLayer(pick("layer_openssl_11", "layer"))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	cfg.MinVersion, cfg.MaxVersion = min, max
	var pool *x509.CertPool
	if ca := pick("ca_chain", "ca_file"); ca != "" {
		b, err := pemOrFile(ca)
		if err != nil {
			return nil, fmt.Errorf("ca_chain: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("ca_chain: no certificate in %s", ca)
		}
		cfg.ClientCAs = pool
	}
	noCA := ssl["optional_no_ca"] == "true"
	switch mode := pick("client_cert"); mode {
	case "":
		if pool != nil {
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		} else if noCA {
			cfg.ClientAuth = tls.RequestClientCert
		}
	case "off":
		cfg.ClientAuth = tls.NoClientCert
	case "optional":
		switch {
		case pool != nil && !noCA:
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		default:
			cfg.ClientAuth = tls.RequestClientCert
		}
	case "required":
		switch {
		case pool != nil && !noCA:
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		case noCA:
			cfg.ClientAuth = tls.RequireAnyClientCert
		default:
			return nil, errors.New("client_cert required needs a ca_chain (or optional_no_ca)")
		}
	default:
		return nil, fmt.Errorf("client_cert %q is not off, optional or required", mode)
	}
	switch a := pick("alpn", "npn"); a {
	case "":
		cfg.NextProtos = []string{"h2", "http/1.1"}
	case "none":
	default:
		for _, p := range strings.Split(a, ",") {
			if p = strings.TrimSpace(p); p != "" {
				cfg.NextProtos = append(cfg.NextProtos, p)
			}
		}
	}
	if c := pick("ciphers"); c != "" && c != "DEFAULT" {
		return nil, fmt.Errorf("ciphers %q: only DEFAULT is supported (Go's cipher suites)", c)
	}
	t := &TLS{}
	t.cur.Store(cfg)
	t.base = &tls.Config{
		MinVersion: cfg.MinVersion,
		NextProtos: cfg.NextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.cur.Load(), nil
		},
	}
	return t, nil
}

// Config is the server configuration to serve with; it follows Update.
func (t *TLS) Config() *tls.Config { return t.base }

// Current is the configuration new handshakes use now.
func (t *TLS) Current() *tls.Config { return t.cur.Load() }

// Update makes new handshakes use next's certificate and settings.
func (t *TLS) Update(next *TLS) { t.cur.Store(next.cur.Load()) }

func pemOrFile(v string) ([]byte, error) {
	if strings.Contains(v, "\n") {
		return []byte(v), nil
	}
	return os.ReadFile(v)
}

var versions = map[string]uint16{
	"tlsv1": tls.VersionTLS10, "tlsv1.0": tls.VersionTLS10, "tlsv1.1": tls.VersionTLS11,
	"tlsv1.2": tls.VersionTLS12, "tlsv1.3": tls.VersionTLS13,
}

// parseLayer reads libmtev's layer: "proto:opts" or "opts", where opts
// is a comma list of all (OpenSSL's workaround bits: ignored), sslv2, sslv3, tlsv1, tlsv1.1, tlsv1.2, tlsv1.3,
// each optionally negated with '!', or a bound >=V, <=V, =V, plus
// cipher_server_preference. SSLv2/3 and TLS below 1.0 are never enabled.
// The default (empty) is TLS 1.2 and later.
func parseLayer(layer string) (min, max uint16, err error) {
	if layer == "" {
		return tls.VersionTLS12, 0, nil
	}
	opts := layer
	if _, after, ok := strings.Cut(layer, ":"); ok {
		opts = after
	}
	all := []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13}
	on := map[uint16]bool{}
	for _, v := range all {
		on[v] = true
	}
	lo, hi := uint16(tls.VersionTLS10), uint16(tls.VersionTLS13)
	for _, tok := range strings.Split(opts, ",") {
		tok = strings.ToLower(strings.TrimSpace(tok))
		if tok == "" || tok == "cipher_server_preference" {
			continue
		}
		neg := strings.HasPrefix(tok, "!")
		tok = strings.TrimPrefix(tok, "!")
		var bound string
		for _, b := range []string{">=", "<=", "="} {
			if strings.HasPrefix(tok, b) {
				bound, tok = b, tok[len(b):]
				break
			}
		}
		if tok == "sslv2" || tok == "sslv3" {
			if !neg && bound == "" {
				return 0, 0, fmt.Errorf("%s is not supported", tok)
			}
			continue
		}
		if tok == "all" && bound == "" {
			continue // OpenSSL's bug-workaround bits (SSL_OP_ALL), not versions
		}
		v, ok := versions[tok]
		if !ok {
			return 0, 0, fmt.Errorf("unknown option %q", tok)
		}
		switch bound {
		case ">=":
			lo = max16(lo, v)
		case "<=":
			hi = min16(hi, v)
		case "=":
			lo, hi = v, v
		default:
			on[v] = !neg
		}
	}
	min, max = 0, 0
	for _, v := range all {
		if on[v] && v >= lo && v <= hi {
			if min == 0 {
				min = v
			}
			max = v
		}
	}
	if min == 0 {
		return 0, 0, fmt.Errorf("%q enables no TLS version", layer)
	}
	if max == tls.VersionTLS13 {
		max = 0
	}
	return min, max, nil
}

func max16(a, b uint16) uint16 {
	if a > b {
		return a
	}
	return b
}

func min16(a, b uint16) uint16 {
	if a < b {
		return a
	}
	return b
}
