package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/server"
)

// writeCert writes a fresh self-signed certificate for 127.0.0.1 and its key
// as PEM files, and returns the certificate.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "ts.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	// Key first, then the certificate: a reader never sees a new
	// certificate with the old key.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// scrape returns the value of one sample of the metrics text, or -1 when
// the sample is absent.
func scrape(t *testing.T, hc *http.Client, url, sample string) float64 {
	t.Helper()
	resp, err := hc.Get(url + server.MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("sample %q: %v", line, err)
			}
			return f
		}
	}
	return -1
}

func get(t *testing.T, hc *http.Client, url string) int {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeTLSOperations runs the composition root over TLS as `serve
// --tls-cert --tls-key` does: health and readiness answer, registrations and
// refusals move their counters on /metrics, a renewed certificate is served
// without a restart, and readiness turns off at shutdown.
func TestServeTLSOperations(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	cert := writeCert(t, certFile, keyFile, 1)
	issuer, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := issuer.Public().MarshalJWK()
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "issuer.pub.jwk")
	if err := os.WriteFile(pubFile, pub, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := server.New(ctx, server.Config{Addr: "127.0.0.1:0", Dir: filepath.Join(dir, "data"), TrustKeys: []string{pubFile},
		TLSCertFile: certFile, TLSKeyFile: keyFile, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") {
		t.Fatalf("URL %s, want https://127.0.0.1:PORT", s.URL)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	// A new connection per request, so that each one sees the certificate
	// served at that moment.
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}

	// /healthz answers 503 "Starting" until the first checkpoint is
	// published (~0.1 s; longer on a loaded machine), then 200.
	code := get(t, hc, s.URL+"/healthz")
	for deadline := time.Now().Add(30 * time.Second); code == http.StatusServiceUnavailable && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		code = get(t, hc, s.URL+"/healthz")
	}
	if code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	// Plain HTTP to the TLS port is refused.
	if resp, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP was served on the TLS port")
		}
		resp.Body.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for get(t, hc, s.URL+server.ReadyPath) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz never became ready")
		}
		time.Sleep(50 * time.Millisecond)
	}

	before := scrape(t, hc, s.URL, "trustfabric_registrations_total")
	if before != 0 {
		t.Fatalf("registrations before any: %v", before)
	}
	c, err := scrapi.NewClient(s.URL, scrapi.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	for i := range n {
		stmt, err := scitt.SignStatement(ctx, issuer, scitt.Claims{Issuer: "https://ci.example.org", Subject: fmt.Sprintf("sha256:%064d", i)},
			[]byte(fmt.Sprintf(`{"n":%d}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.RegisterTransparent(ctx, stmt); err != nil {
			t.Fatalf("register %d: %v", i, err)
		}
	}
	// A statement by an untrusted issuer is refused.
	stranger, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := scitt.SignStatement(ctx, stranger, scitt.Claims{Issuer: "https://stranger.example", Subject: "sha256:" + strings.Repeat("f", 64)}, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	var p *scrapi.Problem
	if _, err := c.Register(ctx, bad); !errors.As(err, &p) || p.Status < 400 || p.Status >= 500 {
		t.Fatalf("untrusted statement: %v, want a 4xx problem", err)
	}

	if got := scrape(t, hc, s.URL, "trustfabric_registrations_total"); got != n {
		t.Errorf("trustfabric_registrations_total = %v after %d registrations", got, n)
	}
	if got := scrape(t, hc, s.URL, fmt.Sprintf(`trustfabric_registration_refusals_total{reason="%d"}`, p.Status)); got != 1 {
		t.Errorf("refusals{reason=%d} = %v, want 1", p.Status, got)
	}
	if got := scrape(t, hc, s.URL, `trustfabric_http_request_duration_seconds_count{route="register"}`); got < n+1 {
		t.Errorf("register latency observations = %v, want ≥ %d", got, n+1)
	}
	// The log's first entry is the registration policy (Service.PolicyEntry).
	if got := scrape(t, hc, s.URL, "trustfabric_log_size"); got != n+1 {
		t.Errorf("trustfabric_log_size = %v, want %d", got, n+1)
	}
	if got := scrape(t, hc, s.URL, "trustfabric_checkpoint_size"); got != n+1 {
		t.Errorf("trustfabric_checkpoint_size = %v, want %d (receipts were issued)", got, n+1)
	}

	// A renewed certificate is served to new connections without a restart.
	renewed := writeCert(t, certFile, keyFile, 2)
	pool.AddCert(renewed)
	deadline = time.Now().Add(10 * time.Second)
	for {
		resp, err := hc.Get(s.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.TLS.PeerCertificates[0].SerialNumber.Int64() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was never served")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A broken renewal keeps the working certificate.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if code := get(t, hc, s.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after a broken renewal: %d", code)
	}

	cancel()
	if err := <-served; err != nil {
		t.Errorf("graceful shutdown: %v", err)
	}
}

// TestTLSFilesRequired: half a TLS configuration, or unreadable files, fail
// at start.
func TestTLSFilesRequired(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, certFile, keyFile, 1)
	for _, tc := range []struct{ cert, key string }{{certFile, ""}, {"", keyFile}, {certFile, filepath.Join(dir, "missing.key")}, {keyFile, keyFile}} {
		s, err := server.New(context.Background(), server.Config{Addr: "127.0.0.1:0", Dir: filepath.Join(dir, "data"), TLSCertFile: tc.cert, TLSKeyFile: tc.key})
		if err == nil {
			s.TS.Close(context.Background())
			t.Errorf("cert %q key %q: started", tc.cert, tc.key)
		}
	}
}
