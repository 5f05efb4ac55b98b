package listener_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/internal/testcert"
	"github.com/mtev-supervise/mtev-supervise/pkg/listener"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

func handshakes(b *testing.B, addr string, pool *tls.Config) {
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		c, err := tls.Dial("tcp", addr, pool)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "handshakes/s")
}

// BenchmarkTLSHandshake: full TLS 1.3 handshakes (ECDSA P-256, no
// resumption) against an http_rest_api listener with ssl on, beside a
// bare crypto/tls listener with the same certificate.
func BenchmarkTLSHandshake(b *testing.B) {
	certs, err := testcert.Write(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	client := &tls.Config{RootCAs: certs.CAPool, ServerName: "localhost", ClientSessionCache: nil}
	b.Run("mtev", func(b *testing.B) {
		specs := listenerSpecs(fmt.Sprintf(`<app><listeners><listener type="http_rest_api" address="127.0.0.1" port="0" ssl="on">
<sslconfig><certificate_file>%s</certificate_file><key_file>%s</key_file></sslconfig></listener></listeners></app>`, certs.ServerCert, certs.ServerKey))
		s := listener.NewSet(listener.Options{Router: rest.New(rest.Options{})})
		if err := s.Start(specs); err != nil {
			b.Fatal(err)
		}
		defer s.Shutdown(context.Background())
		handshakes(b, s.Listening()[0].Addr.String(), client)
	})
	b.Run("base-crypto-tls", func(b *testing.B) {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{certs.Server}, MinVersion: tls.VersionTLS12})
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func(c net.Conn) {
					c.(*tls.Conn).Handshake()
					c.Read(make([]byte, 1))
					c.Close()
				}(c)
			}
		}()
		handshakes(b, ln.Addr().String(), client)
	})
}
