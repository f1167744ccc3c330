package admission

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clientCA returns a CA (PEM) and a client certificate it signed.
func clientCA(t *testing.T, cn string) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn + "-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestGatekeeperClientCA: with ServeConfig.ClientCA (admission serve
// --client-ca), /gatekeeper answers only clients with a certificate from
// that CA (401 without one; a certificate from another CA is not
// accepted), while /validate still takes the API server's calls without
// one.
func TestGatekeeperClientCA(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	certFile, keyFile, serverCA := testCA(t, dir)
	gkCA, gkCert := clientCA(t, "gatekeeper")
	_, strangerCert := clientCA(t, "stranger")
	caFile := filepath.Join(dir, "client-ca.crt")
	if err := os.WriteFile(caFile, gkCA, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(f.configFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Default = "prod"
	w := f.webhook(t, nil)
	w.cfg = cfg
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, w, ServeConfig{Listener: l, TLSCert: certFile, TLSKey: keyFile, ClientCA: caFile}, nil)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(serverCA)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12}}}
	}
	gkBody, _ := json.Marshal(map[string]any{"apiVersion": ProviderAPIVersion, "kind": "ProviderRequest",
		"request": map[string]any{"keys": []string{f.attested}}})
	post := func(c *http.Client, path string, body []byte) (int, string, error) {
		resp, err := c.Post("https://"+l.Addr().String()+path, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}

	// Gatekeeper with its certificate: answered.
	code, body, err := post(client(gkCert), PathGatekeeper, gkBody)
	if err != nil || code != http.StatusOK || !strings.Contains(body, `"value":"`+f.attested+`"`) {
		t.Fatalf("with the client certificate: %d %s %v", code, body, err)
	}
	// Without a certificate: 401 on /gatekeeper and /gatekeeper/POLICY.
	for _, path := range []string{PathGatekeeper, PathGatekeeper + "/prod"} {
		code, body, err = post(client(), path, gkBody)
		if err != nil || code != http.StatusUnauthorized || !strings.Contains(body, "client certificate") {
			t.Errorf("%s without a client certificate: %d %s %v", path, code, body, err)
		}
	}
	// A certificate from another CA: not answered (Go's client does not
	// offer a certificate the server's CA list does not name: 401; one
	// offered anyway would fail the handshake).
	if code, body, err = post(client(strangerCert), PathGatekeeper, gkBody); err == nil && code != http.StatusUnauthorized {
		t.Errorf("a certificate from another CA was answered: %d %s", code, body)
	}
	// One offered anyway (whatever the server's CA list says) fails the handshake.
	forced := client()
	forced.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &strangerCert, nil
	}
	if code, body, err = post(forced, PathGatekeeper, gkBody); err == nil {
		t.Errorf("a certificate from another CA, offered anyway, was answered: %d %s", code, body)
	}
	// The API server calls /validate without a client certificate.
	review := review(t, deploymentKind, nsGated, deployment("web", f.attested))
	code, body, err = post(client(), PathValidate, review)
	if err != nil || code != http.StatusOK || !strings.Contains(body, `"allowed":true`) {
		t.Errorf("/validate without a client certificate: %d %s %v", code, body, err)
	}
	// A client CA file that is not PEM is refused at start.
	bad := filepath.Join(dir, "bad.crt")
	_ = os.WriteFile(bad, []byte("not pem"), 0o644)
	if err := Serve(context.Background(), w, ServeConfig{Addr: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile, ClientCA: bad}, nil); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("bad client CA: %v", err)
	}
}
