package framework

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
)

// WithTLS makes workers serve HTTPS, with HTTP/2 offered through ALPN,
// using the PEM certificate chain in certFile and its private key in
// keyFile. Overridden by $BROOD_TLS_CERT and $BROOD_TLS_KEY (both or
// neither).
//
// Both files are read and the pair checked before anything starts. Each
// process reads them when it starts, so a renewed certificate reaches the
// workers with a rolling reload (SIGHUP to the master): new workers load the
// new files, and if the files no longer load, the new workers fail to start
// and the old ones keep serving with the old certificate.
//
// The TLS configuration accepts TLS 1.2 and 1.3 and Go's default cipher
// suites, which offer only AEAD suites with forward secrecy for TLS 1.2.
func WithTLS(certFile, keyFile string) Option {
	return func(c *config) {
		c.tls.certFile, c.tls.keyFile, c.tls.from = certFile, keyFile, "WithTLS"
	}
}

// tlsFiles is the TLS part of the configuration; cert is loaded by resolve.
type tlsFiles struct {
	certFile, keyFile string
	from              string // "WithTLS" or "$BROOD_TLS_CERT/$BROOD_TLS_KEY"
	cert              *tls.Certificate
}

func (t *tlsFiles) enabled() bool { return t.cert != nil }

func (t *tlsFiles) fromEnv(getenv func(string) string) {
	cert, key := getenv("BROOD_TLS_CERT"), getenv("BROOD_TLS_KEY")
	if cert != "" || key != "" {
		t.certFile, t.keyFile, t.from = cert, key, "$BROOD_TLS_CERT/$BROOD_TLS_KEY"
	}
}

// load checks the files and loads the pair, so that a wrong path or a key
// that does not match the certificate stops the master at startup, with the
// files named, instead of every worker failing its start.
func (t *tlsFiles) load() error {
	if t.certFile == "" && t.keyFile == "" {
		return nil
	}
	pair := fmt.Sprintf("certificate %q and key %q", t.certFile, t.keyFile)
	if t.certFile == "" || t.keyFile == "" {
		return &ConfigError{t.from, pair, "want both a certificate file and a key file, or neither for plain HTTP", nil}
	}
	var errs []error
	for _, f := range []string{t.certFile, t.keyFile} {
		if err := readable(f); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return &ConfigError{t.from, pair, "want readable PEM files", errors.Join(errs...)}
	}
	cert, err := tls.LoadX509KeyPair(t.certFile, t.keyFile)
	if err != nil {
		return &ConfigError{t.from, pair, "want a PEM certificate chain and the PEM private key that matches it", err}
	}
	t.cert = &cert
	return nil
}

func readable(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return err
	} else if st.IsDir() {
		return fmt.Errorf("%s is a directory", name)
	}
	return nil
}

// serverTLSConfig is the configuration workers serve with, nil for plain
// HTTP. NextProtos lists h2 first so that clients that can speak HTTP/2 do.
func (t *tlsFiles) serverTLSConfig() *tls.Config {
	if !t.enabled() {
		return nil
	}
	return &tls.Config{
		Certificates: []tls.Certificate{*t.cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// scheme is the URL scheme workers serve, for the ready line.
func (c *config) scheme() string {
	if c.tls.enabled() {
		return "https"
	}
	return "http"
}
