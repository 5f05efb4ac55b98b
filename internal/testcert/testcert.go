// Package testcert makes a throw-away certificate authority with server
// and client certificates for tests.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Set holds the files written by Write and the parsed pieces.
type Set struct {
	Dir                                              string
	CA, ServerCert, ServerKey, ClientCert, ClientKey string // file paths
	CAPool                                           *x509.CertPool
	Client                                           tls.Certificate // CN "client"
	Server                                           tls.Certificate
	caCert                                           *x509.Certificate
	caKey                                            *ecdsa.PrivateKey
}

// Write generates a CA, a server certificate for 127.0.0.1, ::1 and
// localhost, and a client certificate with CN "client", into dir.
func Write(dir string) (*Set, error) {
	s := &Set{Dir: dir}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	s.caCert, _ = x509.ParseCertificate(caDER)
	s.caKey = caKey
	s.CAPool = x509.NewCertPool()
	s.CAPool.AddCert(s.caCert)
	s.CA = filepath.Join(dir, "ca.pem")
	if err := writePEM(s.CA, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	s.ServerCert, s.ServerKey, s.Server, err = s.Issue("server", "localhost", 2, true)
	if err != nil {
		return nil, err
	}
	s.ClientCert, s.ClientKey, s.Client, err = s.Issue("client", "client", 3, false)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Issue signs a new certificate with the CA and writes NAME.pem and
// NAME-key.pem.
func (s *Set) Issue(name, cn string, serial int64, server bool) (certFile, keyFile string, pair tls.Certificate, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return
	}
	t := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		t.DNSNames = []string{"localhost"}
		t.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	} else {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, t, s.caCert, &key.PublicKey, s.caKey)
	if err != nil {
		return
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return
	}
	certFile, keyFile = filepath.Join(s.Dir, name+".pem"), filepath.Join(s.Dir, name+"-key.pem")
	if err = writePEM(certFile, "CERTIFICATE", der); err != nil {
		return
	}
	if err = writePEM(keyFile, "EC PRIVATE KEY", kb); err != nil {
		return
	}
	pair, err = tls.LoadX509KeyPair(certFile, keyFile)
	return
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
