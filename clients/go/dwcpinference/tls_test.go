// Transport security: TLS and mutual TLS with certificates made in the test.

package dwcpinference

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/test/bufconn"

	inferencev1 "github.com/dwcp/dwcp-inference/clients/go/gen/dwcp/inference/v1"
)

// testCA issues certificates for the tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a leaf certificate for "localhost" usable by a server and a client.
func (ca *testCA) issue(t *testing.T, serial int64) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestTransportSecurity(t *testing.T) {
	ca := newTestCA(t)
	serverCert, clientCert := ca.issue(t, 2), ca.issue(t, 3)
	stranger := newTestCA(t)
	cases := []struct {
		name       string
		mutual     bool // server requires a client certificate from ca
		security   Option
		wantServed bool
	}{
		{"TLS", false, WithTLS(&tls.Config{RootCAs: ca.pool, ServerName: "localhost"}), true},
		{"TLS, server not trusted", false, WithTLS(&tls.Config{RootCAs: stranger.pool, ServerName: "localhost"}), false},
		{"plaintext to a TLS server", false, WithInsecure(), false},
		{"mutual TLS", true, WithTLS(&tls.Config{RootCAs: ca.pool, ServerName: "localhost", Certificates: []tls.Certificate{clientCert}}), true},
		{"mutual TLS, no client certificate", true, WithTLS(&tls.Config{RootCAs: ca.pool, ServerName: "localhost"}), false},
		{"credentials object", false, WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.pool, ServerName: "localhost"})), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}
			if tc.mutual {
				cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, ca.pool
			}
			lis := bufconn.Listen(1 << 20)
			srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
			inferencev1.RegisterInferenceServiceServer(srv, &fakeServer{version: "tls"})
			go func() { _ = srv.Serve(lis) }()
			defer srv.Stop()
			dialer := func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
			c, err := New("passthrough:///bufnet", tc.security, WithTimeout(2*time.Second),
				WithDialOptions(grpc.WithContextDialer(dialer)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r, err := c.DetectAnomaly(context.Background(), nodeMetrics())
			if tc.wantServed && (err != nil || r.ModelVersion != "tls") {
				t.Fatalf("got %+v, %v; want an answer", r, err)
			}
			if !tc.wantServed && !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable (refused handshake)", err)
			}
		})
	}
}
