// Mutual TLS against the real Python server: certificates made in the test, the server started with
// --tls-cert-file, --tls-key-file and --tls-client-ca-file.

package dwcpinference

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePEM writes one PEM block and returns its path.
func writePEM(t *testing.T, dir, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeLeaf writes a certificate and its key as PEM files; returns (certificate path, key path).
func writeLeaf(t *testing.T, dir, name string, leaf tls.Certificate) (string, string) {
	t.Helper()
	key, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name+".crt", "CERTIFICATE", leaf.Certificate[0]),
		writePEM(t, dir, name+".key", "PRIVATE KEY", key)
}

// startOwnServer starts a live server with extra flags for one test and stops it at the end.
func startOwnServer(t *testing.T, extra ...string) *liveServer {
	t.Helper()
	requireIntegration(t)
	srv, err := startServer(extra...)
	if err != nil {
		t.Fatalf("live server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Errorf("stopping the server: %v", err)
		}
	})
	return srv
}

func TestLiveMutualTLS(t *testing.T) {
	ca, stranger := newTestCA(t), newTestCA(t)
	dir := t.TempDir()
	serverCert, serverKey := writeLeaf(t, dir, "server", ca.issue(t, 2))
	caFile := writePEM(t, dir, "ca.crt", "CERTIFICATE", ca.cert.Raw)
	srv := startOwnServer(t, "--tls-cert-file", serverCert, "--tls-key-file", serverKey, "--tls-client-ca-file", caFile)
	port := srv.addr[strings.LastIndex(srv.addr, ":"):]

	cases := []struct {
		name   string
		client []tls.Certificate
		ok     bool
	}{
		{"certificate from the CA", []tls.Certificate{ca.issue(t, 3)}, true},
		{"no client certificate", nil, false},
		{"certificate from another CA", []tls.Certificate{stranger.issue(t, 4)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: ca.pool, Certificates: tc.client, ServerName: "localhost", MinVersion: tls.VersionTLS12}
			c, err := New("localhost"+port, WithTLS(cfg), WithTimeout(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got, err := c.DetectAnomaly(context.Background(), nodeMetrics())
			if tc.ok {
				if err != nil || got.ModelName != ModelReliabilityDetector {
					t.Fatalf("DetectAnomaly over mTLS: %+v, %v\n%s", got, err, srv.logTail())
				}
				return
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("want ErrUnavailable for %s, got %v", tc.name, err)
			}
		})
	}
	t.Run("plaintext", func(t *testing.T) {
		c, err := New(srv.addr, WithInsecure(), WithTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.DetectAnomaly(context.Background(), nodeMetrics()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("want ErrUnavailable for a plaintext client, got %v", err)
		}
	})
}
