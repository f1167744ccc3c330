package server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloader serves the certificate of a PEM certificate (chain) file and
// key file, reloading both when either file's contents change (a renewed
// certificate written by cert-manager or certbot), checked on a handshake at
// most once per interval (one second). A pair that fails to load keeps the previous certificate in
// service and is logged.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	interval          time.Duration

	mu       sync.Mutex
	cert     *tls.Certificate
	certPEM  []byte
	keyPEM   []byte
	lastFail string
	checked  time.Time
}

// newCertReloader loads the pair once: a missing or malformed pair is an
// error at start, not at the first handshake.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("TLS needs both a certificate and a key file (--tls-cert and --tls-key)")
	}
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log, interval: time.Second}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads both files and swaps the certificate when they changed.
func (c *certReloader) reload() error {
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return fmt.Errorf("tls certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return fmt.Errorf("tls key: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && bytes.Equal(certPEM, c.certPEM) && bytes.Equal(keyPEM, c.keyPEM) {
		return nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("tls certificate and key: %w", err)
	}
	c.cert, c.certPEM, c.keyPEM = &cert, certPEM, keyPEM
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	due := time.Since(c.checked) >= c.interval
	if due {
		c.checked = time.Now()
	}
	c.mu.Unlock()
	if !due {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.cert, nil
	}
	if err := c.reload(); err != nil {
		c.mu.Lock()
		if msg := err.Error(); msg != c.lastFail {
			c.lastFail = msg
			c.log.Warn("keeping the previous TLS certificate", slog.String("error", msg))
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert, nil
}

// tlsConfig is the server's TLS configuration: TLS 1.2 or later.
func (c *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.getCertificate}
}
