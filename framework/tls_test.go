package framework

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ct "github.com/broodhq/brood/internal/clustertest"
)

func init() {
	// WithTLS in code; the files come from the test through the environment.
	testApps["tls"] = func() error {
		dir := os.Getenv("BROOD_TEST_TLS_DIR")
		return Run(testRouter(), withRestartMin(20*time.Millisecond),
			WithTLS(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")))
	}
}

// testCert is a self-signed certificate for 127.0.0.1, written to dir as
// cert.pem and key.pem.
type testCert struct {
	x509 *x509.Certificate
	pool *x509.CertPool
}

func writeTestCert(t *testing.T, dir string, serial int64) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "brood test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Written to temporary names and renamed, as certificate renewal tools
	// do, so a process starting meanwhile never reads half a file.
	for name, block := range map[string]*pem.Block{
		"cert.pem": {Type: "CERTIFICATE", Bytes: der},
		"key.pem":  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return testCert{cert, pool}
}

// tlsClient trusts only cert; h2 forces HTTP/2 (ForceAttemptHTTP2 offers h2
// through ALPN, as browsers do), else the client offers only HTTP/1.1.
func tlsClient(cert testCert, h2 bool) *http.Client {
	cfg := &tls.Config{RootCAs: cert.pool}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: tr}
}

func startTLS(t *testing.T, dir string, workers string) *ct.Cluster {
	t.Helper()
	c := ct.Start(t, "tls", local, "BROOD_WORKERS="+workers, "BROOD_TEST_TLS_DIR="+dir)
	c.WaitReady(30 * time.Second)
	return c
}

func TestTLSServesHTTP2AndHTTP1(t *testing.T) {
	dir := t.TempDir()
	cert := writeTestCert(t, dir, 1)
	c := startTLS(t, dir, "2")
	if c.Scheme != "https" {
		t.Fatalf("ready line scheme %q, want https", c.Scheme)
	}

	for _, tc := range []struct {
		name  string
		h2    bool
		major int
		proto string
	}{
		{"h2", true, 2, "HTTP/2.0"},
		{"http1.1", false, 1, "HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := tlsClient(cert, tc.h2)
			defer client.CloseIdleConnections()
			resp, err := client.Get(c.URL("/"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "Hello, World!" {
				t.Errorf("GET / = %d %q, want 200 Hello, World!", resp.StatusCode, body)
			}
			if resp.ProtoMajor != tc.major || resp.Proto != tc.proto {
				t.Errorf("protocol %s (major %d), want %s", resp.Proto, resp.ProtoMajor, tc.proto)
			}
			if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
				t.Errorf("connection state %+v, want TLS 1.2 or later", resp.TLS)
			}
			// The default chain works over TLS too: probes and request ids.
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id on the response")
			}
			if st, _, err := ct.Get(client, c.URL("/readyz")); err != nil || st != 200 {
				t.Errorf("GET /readyz = %d, %v; want 200", st, err)
			}
		})
	}

	t.Run("plain HTTP refused", func(t *testing.T) {
		resp, err := ct.Client(5 * time.Second).Get("http://" + c.Addr + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("plain HTTP to the TLS port = %d, want 400 (net/http's answer to HTTP on a TLS port)", resp.StatusCode)
			}
		}
	})

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", c.Addr, &tls.Config{RootCAs: cert.pool, MaxVersion: tls.VersionTLS11})
		if err == nil {
			conn.Close()
			t.Fatal("a TLS 1.1 handshake succeeded; want TLS 1.2 at least")
		}
	})
}

// Each worker reads the files when it starts, so a rolling reload (SIGHUP)
// puts a renewed certificate in service; a pair that no longer loads fails
// the new workers' start, the reload is rolled back, and the old workers
// keep serving the old certificate.
func TestTLSRenewedCertificateServedAfterReload(t *testing.T) {
	dir := t.TempDir()
	first := writeTestCert(t, dir, 1)
	c := startTLS(t, dir, "2")

	serial := func(cert testCert) int64 {
		t.Helper()
		conn, err := tls.Dial("tcp", c.Addr, &tls.Config{RootCAs: cert.pool})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	// Fresh connections, spread by the kernel over both workers.
	allServe := func(cert testCert, want int64) {
		t.Helper()
		for range 20 {
			if got := serial(cert); got != want {
				t.Fatalf("a worker serves certificate serial %d, want %d", got, want)
			}
		}
	}
	allServe(first, 1)

	renewed := writeTestCert(t, dir, 2)
	allServe(first, 1) // running workers keep what they loaded
	at := c.Lines()
	c.Signal(syscall.SIGHUP)
	if _, _, err := c.WaitLog(60*time.Second, at, ct.Msg("reload complete")); err != nil {
		t.Fatalf("reload with a renewed certificate: %v", err)
	}
	allServe(renewed, 2)

	// A key that does not match the certificate: the reload fails and is
	// rolled back.
	other := t.TempDir()
	writeTestCert(t, other, 3)
	key, err := os.ReadFile(filepath.Join(other, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	at = c.Lines()
	c.Signal(syscall.SIGHUP)
	if _, _, err := c.WaitLog(60*time.Second, at, ct.Msg("reload rolled back")); err != nil {
		t.Fatalf("reload with a mismatched key: %v", err)
	}
	if _, _, err := c.WaitLog(time.Second, at, func(l map[string]any) bool {
		msg, _ := l["msg"].(string)
		return strings.Contains(msg, "private key does not match public key")
	}); err != nil {
		t.Errorf("no log record says why the new workers failed: %v", err)
	}
	allServe(renewed, 2)
}

func TestTLSConfigRefused(t *testing.T) {
	dir := t.TempDir()
	writeTestCert(t, dir, 1)
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	other := t.TempDir()
	writeTestCert(t, other, 2)
	otherKey := filepath.Join(other, "key.pem")
	missing := filepath.Join(dir, "missing.pem")

	for _, tc := range []struct {
		name string
		opts []Option
		env  map[string]string
		want []string // substrings of the error
	}{
		{"cert without key", []Option{WithTLS(cert, "")}, nil, []string{"WithTLS", "both a certificate file and a key file"}},
		{"env key without cert", nil, map[string]string{"BROOD_TLS_KEY": key}, []string{"$BROOD_TLS_CERT/$BROOD_TLS_KEY", "both"}},
		{"missing file", []Option{WithTLS(missing, key)}, nil, []string{missing, "readable", "no such file"}},
		{"directory", []Option{WithTLS(dir, key)}, nil, []string{"is a directory"}},
		{"key of another certificate", []Option{WithTLS(cert, otherKey)}, nil, []string{cert, otherKey, "matches", "private key does not match"}},
		{"key as certificate", []Option{WithTLS(key, key)}, nil, []string{"PEM certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolve(tc.opts, func(k string) string { return tc.env[k] })
			if err == nil {
				t.Fatal("accepted; want an error")
			}
			t.Log(err)
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}

	t.Run("env overrides code", func(t *testing.T) {
		env := map[string]string{"BROOD_TLS_CERT": cert, "BROOD_TLS_KEY": key}
		c, err := resolve([]Option{WithTLS(missing, missing)}, func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if c.scheme() != "https" || c.tls.certFile != cert {
			t.Errorf("scheme %s, cert %q; want https and %q", c.scheme(), c.tls.certFile, cert)
		}
	})
	t.Run("neither is plain HTTP", func(t *testing.T) {
		c, err := resolve(nil, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if c.scheme() != "http" || c.tls.serverTLSConfig() != nil {
			t.Errorf("scheme %s; want http and no TLS config", c.scheme())
		}
	})
}
