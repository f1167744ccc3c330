package main

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
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/admission"
	"github.com/trustfabric/trustfabric/pkg/quickstart"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

// syncBuffer is a bytes.Buffer safe for the serving goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestAdmissionServe runs `trustfabric admission serve --policy` and sends
// it an AdmissionReview over TLS: the environment's image has no statement,
// so the Deployment is denied with the verify reason.
func TestAdmissionServe(t *testing.T) {
	if code, _, errOut := tf(t, "admission", "serve", "--tls-cert", "x", "--tls-key", "y"); code != 2 || !strings.Contains(errOut, "--config FILE or --policy FILE") {
		t.Fatalf("without --config or --policy: exit %d: %s", code, errOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	env, err := servertest.Start(ctx, servertest.Config{Dir: filepath.Join(dir, "env")})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	pol, err := quickstart.WritePolicy(dir, env)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)

	var stdout, stderr syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"admission", "serve", "--addr", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile,
			"--policy", pol}, &stdout, &stderr)
	}()
	addrRE := regexp.MustCompile(`https://(127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(20 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(stdout.String()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("not listening: %s %s", stdout.String(), stderr.String())
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	obj, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": []any{map[string]any{"name": "web", "image": env.Image}}}}}})
	body, _ := json.Marshal(map[string]any{"apiVersion": admission.ReviewAPIVersion, "kind": admission.ReviewKind,
		"request": map[string]any{"uid": "u1", "kind": map[string]string{"group": "apps", "version": "v1", "kind": "Deployment"},
			"namespace": "default", "name": "web", "operation": "CREATE", "object": json.RawMessage(obj)}})
	resp, err := hc.Post("https://"+addr+admission.PathValidate, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rv admission.Review
	if err := json.NewDecoder(resp.Body).Decode(&rv); err != nil || rv.Response == nil {
		t.Fatalf("response: %v", err)
	}
	if rv.Response.Allowed || rv.Response.UID != "u1" || !strings.Contains(rv.Response.Result.Message, "no SCITT statement is attached") {
		t.Fatalf("response %+v %+v", rv.Response, rv.Response.Result)
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d after SIGINT-like cancel: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("admission serve did not stop")
	}
	if !strings.Contains(stderr.String(), "allowed=false") {
		t.Errorf("no decision log line: %s", stderr.String())
	}
}
