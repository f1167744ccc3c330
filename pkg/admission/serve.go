package admission

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// ServeConfig says where and how Serve listens.
type ServeConfig struct {
	// Addr is HOST:PORT; Listener, when set, is used instead.
	Addr     string
	Listener net.Listener
	// TLSCert and TLSKey are PEM files of the serving certificate (the API
	// server calls webhooks over HTTPS only). They are re-read when they
	// change on disk (cert-manager rotation), checked at most every 10 s.
	TLSCert, TLSKey string
	// ClientCA, when set, is a PEM bundle of the CAs whose client
	// certificates may call /gatekeeper (Gatekeeper ≥ 3.11 presents one):
	// requests there without a certificate that chains to it get 401. The
	// API server's calls to /validate and /mutate need none. Re-read when it
	// changes, like the serving pair.
	ClientCA string
}

// Serve serves w.Handler() over TLS until ctx is done, then shuts down
// gracefully. ready, when set, is called with the listening address.
func Serve(ctx context.Context, w *Webhook, sc ServeConfig, ready func(addr string)) error {
	if sc.TLSCert == "" || sc.TLSKey == "" {
		return errors.New("admission: a TLS certificate and key are required (the API server calls webhooks over HTTPS only)")
	}
	certs := &certReloader{certFile: sc.TLSCert, keyFile: sc.TLSKey}
	if _, err := certs.get(); err != nil {
		return err
	}
	l := sc.Listener
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", sc.Addr); err != nil {
			return fmt.Errorf("listen on %s: %w", sc.Addr, err)
		}
	}
	h := w.Handler()
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return certs.get() }}
	if sc.ClientCA != "" {
		cas := &caReloader{file: sc.ClientCA}
		if _, err := cas.get(); err != nil {
			return err
		}
		base := tlsConfig
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			pool, err := cas.get()
			if err != nil {
				return nil, err
			}
			c := base.Clone()
			c.ClientCAs, c.ClientAuth = pool, tls.VerifyClientCertIfGiven
			return c, nil
		}}
		h = requireClientCert(h, PathGatekeeper)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      35 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         tlsConfig,
	}
	if ready != nil {
		ready(l.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(l, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	mod     time.Time
	checked time.Time
}

func (c *certReloader) get() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && time.Since(c.checked) < 10*time.Second {
		return c.cert, nil
	}
	c.checked = time.Now()
	var mod time.Time
	for _, f := range []string{c.certFile, c.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			if c.cert != nil {
				return c.cert, nil // keep serving the last good pair
			}
			return nil, fmt.Errorf("tls: %w", err)
		}
		if st.ModTime().After(mod) {
			mod = st.ModTime()
		}
	}
	if c.cert != nil && !mod.After(c.mod) {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		if c.cert != nil {
			return c.cert, nil // a half-written rotation: keep the last good pair
		}
		return nil, fmt.Errorf("tls: load %s and %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert, c.mod = &cert, mod
	return c.cert, nil
}

// requireClientCert answers 401 to requests under prefix (the path or its
// subpaths) that came without a verified client certificate.
func requireClientCert(next http.Handler, prefix string) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if (p == prefix || strings.HasPrefix(p, prefix+"/")) && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			http.Error(rw, "a client certificate signed by the --client-ca is required on "+prefix, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(rw, r)
	})
}

// caReloader reads a CA bundle, again when the file changes (checked at
// most every 10 s); a bad rewrite keeps the last good bundle.
type caReloader struct {
	file string

	mu      sync.Mutex
	pool    *x509.CertPool
	mod     time.Time
	checked time.Time
}

func (c *caReloader) get() (*x509.CertPool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pool != nil && time.Since(c.checked) < 10*time.Second {
		return c.pool, nil
	}
	c.checked = time.Now()
	st, err := os.Stat(c.file)
	if err != nil {
		if c.pool != nil {
			return c.pool, nil
		}
		return nil, fmt.Errorf("client CA: %w", err)
	}
	if c.pool != nil && !st.ModTime().After(c.mod) {
		return c.pool, nil
	}
	b, err := os.ReadFile(c.file)
	pool := x509.NewCertPool()
	if err == nil && !pool.AppendCertsFromPEM(b) {
		err = fmt.Errorf("client CA %s: no PEM certificate", c.file)
	}
	if err != nil {
		if c.pool != nil {
			return c.pool, nil
		}
		return nil, err
	}
	c.pool, c.mod = pool, st.ModTime()
	return c.pool, nil
}
