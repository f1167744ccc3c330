package transparency_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/transparency"
)

// TestPendingAnswers checks the 303 and 302 + Retry-After answers while no
// published checkpoint covers the entry (slow checkpoints, tiny wait).
func TestPendingAnswers(t *testing.T) {
	issuer := newRandKey(t, cose.AlgorithmES256)
	kf := writeKey(t, t.TempDir(), "issuer.jwk", issuer)
	pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, []string{kf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := transparency.Open(t.Context(), transparency.Options{Dir: t.TempDir(), Policy: pol,
		RegistrationWait: time.Millisecond, CheckpointInterval: 3 * time.Second, BatchMaxAge: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler(transparency.HandlerOptions{}))
	defer func() { srv.Close(); svc.Close(context.Background()) }()
	// Let the first checkpoint (policy statement) go out, so the next one is
	// ~3 s away.
	waitHealthy(t, srv.URL)
	stmt, _ := scitt.SignStatement(t.Context(), issuer, scitt.Claims{Issuer: "https://ci.test", Subject: "s"}, []byte("pending"))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Post(srv.URL+"/entries", scrapi.MediaTypeCOSE, bytes.NewReader(stmt))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	entry, _ := scitt.EntryHash(stmt)
	if resp.StatusCode != http.StatusSeeOther || loc != "/entries/"+(&transparency.Registration{Entry: entry}).ID() {
		t.Fatalf("POST = %d Location %q, want 303 to the entry", resp.StatusCode, loc)
	}
	resp, err = client.Get(srv.URL + loc)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Location") != loc {
		t.Fatalf("GET pending = %d Retry-After %q Location %q, want 302 with Retry-After and the same Location",
			resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Location"))
	}
	// The client follows 302 + Retry-After until the receipt is there.
	c, _ := scrapi.NewClient(srv.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	r, err := c.Receipt(ctx, loc[len("/entries/"):])
	if err != nil {
		t.Fatal(err)
	}
	verifyReceipt(t, stmt, r, svc.Keys())
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
	}
	t.Fatal("service not healthy")
}

// TestKidAsJWKKidString registers a statement whose kid is the UTF-8 bytes of
// the trusted JWK's "kid" string rather than a thumbprint.
func TestKidAsJWKKidString(t *testing.T) {
	issuer := newRandKey(t, cose.AlgorithmES256)
	pub, _ := issuer.Public().MarshalJWK()
	var m map[string]any
	if err := json.Unmarshal(pub, &m); err != nil {
		t.Fatal(err)
	}
	m["kid"] = "ci-signing-key-2026"
	b, _ := json.Marshal(m)
	kf := filepath.Join(t.TempDir(), "issuer.jwk")
	if err := os.WriteFile(kf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, []string{kf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := transparency.Open(t.Context(), transparency.Options{Dir: t.TempDir(), Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(context.Background())
	stmt := signRaw(t, issuer, cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256, cose.HeaderLabelKeyID: []byte("ci-signing-key-2026"),
		int64(15): map[any]any{int64(1): "https://ci.test", int64(2): "s"}}, []byte("payload"))
	if _, err := svc.Register(t.Context(), stmt); err != nil {
		t.Fatalf("statement with a JWK kid string refused: %v", err)
	}
}
