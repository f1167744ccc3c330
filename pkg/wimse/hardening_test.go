package wimse

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// signWPT signs a WPT for f's WIT with its workload key, with the given exp.
func signWPT(t *testing.T, f *fixture, aud string, iat, exp time.Time) string {
	t.Helper()
	s, err := newJOSESigner(f.workload, TypeWPT, false)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(map[string]any{"aud": aud, "iat": iat.Unix(), "exp": exp.Unix(), "jti": randomID(), "wth": witHash(f.wit)}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Issue 11 item 6: a WPT 30 s past its exp was accepted (the WIT's one-minute
// leeway applied); proofs get a few seconds.
func TestWPTPastExpRefused(t *testing.T) {
	f := newFixture(t)
	const aud = "https://ts.example/entries"
	now := time.Now()
	auth := &Authenticator{Bundles: Bundles{f.bundle}, Origins: []string{"https://ts.example"}, Replay: NewReplayCache(100)}
	try := func(a *Authenticator, past time.Duration) error {
		req := httptest.NewRequest("POST", aud, nil)
		req.Header.Set(HeaderWIT, f.wit)
		req.Header.Set(HeaderWPT, signWPT(t, f, aud, now.Add(-past-time.Minute), now.Add(-past)))
		_, err := a.Authenticate(req)
		return err
	}
	if err := try(auth, 30*time.Second); !errors.Is(err, ErrExpired) {
		t.Fatalf("WPT 30 s past exp: err = %v, want ErrExpired", err)
	}
	if err := try(auth, 6*time.Second); !errors.Is(err, ErrExpired) {
		t.Fatalf("WPT 6 s past exp with the default %s leeway: err = %v, want ErrExpired", DefaultProofLeeway, err)
	}
	if err := try(auth, 2*time.Second); err != nil {
		t.Fatalf("WPT 2 s past exp (within the leeway): %v", err)
	}
	wide := *auth
	wide.ProofLeeway = 10 * time.Second
	if err := try(&wide, 8*time.Second); err != nil {
		t.Fatalf("WPT 8 s past exp with a 10 s leeway: %v", err)
	}
	wide.ProofLeeway = time.Hour // capped at MaxProofLeeway
	if err := try(&wide, 30*time.Second); !errors.Is(err, ErrExpired) {
		t.Fatalf("WPT 30 s past exp with an over-large leeway: err = %v, want ErrExpired", err)
	}
	// VerifyWPT alone uses the same default.
	w := verifiedWIT(t, f)
	tok := signWPT(t, f, aud, now.Add(-time.Minute), now.Add(-30*time.Second))
	if _, err := VerifyWPT(tok, w, ProofPolicy{Audiences: []string{aud}}); !errors.Is(err, ErrExpired) {
		t.Fatalf("VerifyWPT 30 s past exp: err = %v, want ErrExpired", err)
	}
}

// Issue 11 item 8: one authenticated workload could fill the registration
// WPT replay cache; each caller gets a share.
func TestReplayCachePerCallerQuota(t *testing.T) {
	f, g := newFixture(t), newFixture(t)
	g.id = RequireIdentifier("spiffe://" + testTD + "/other")
	wit, err := MintWIT(f.issuer, WITClaims{Subject: g.id, Expiry: time.Now().Add(10 * time.Minute), Key: g.workload.PublicJWK()})
	if err != nil {
		t.Fatal(err)
	}
	g.wit, g.bundle = wit, f.bundle
	auth := &Authenticator{Bundles: Bundles{f.bundle}, Origins: []string{"https://ts.example"}, Replay: NewReplayCache(10, WithOwnerLimit(4))}
	do := func(x *fixture) (int, error) {
		req := httptest.NewRequest("POST", "https://ts.example/entries", nil)
		req.Header.Set(HeaderWIT, x.wit)
		wpt, _ := MintWPT(x.workload, x.wit, "https://ts.example/entries", 0)
		req.Header.Set(HeaderWPT, wpt)
		_, err := auth.Authenticate(req)
		if err != nil {
			rec := httptest.NewRecorder()
			return auth.Challenge(rec, err), err
		}
		return http.StatusOK, nil
	}
	for i := range 4 {
		if _, err := do(f); err != nil {
			t.Fatalf("proof %d: %v", i, err)
		}
	}
	for range 20 { // the flood
		if status, err := do(f); !errors.Is(err, ErrReplayQuota) || status != http.StatusTooManyRequests {
			t.Fatalf("over quota: status %d, err = %v, want 429 ErrReplayQuota", status, err)
		}
	}
	for i := range 4 {
		if _, err := do(g); err != nil {
			t.Fatalf("another caller's proof %d after the flood: %v", i, err)
		}
	}
	// Expired proofs free the caller's share.
	c := NewReplayCache(10, WithOwnerLimit(1))
	now := time.Now()
	if err := c.UseFor("a", "1", now.Add(time.Second), now); err != nil {
		t.Fatal(err)
	}
	if err := c.UseFor("a", "2", now.Add(time.Second), now); !errors.Is(err, ErrReplayQuota) {
		t.Fatalf("err = %v, want ErrReplayQuota", err)
	}
	if err := c.UseFor("a", "2", now.Add(3*time.Second), now.Add(2*time.Second)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

// mintEdDSAWIT signs a WIT with an Ed25519 issuer key (go-jose directly:
// MintWIT only signs with the profile's algorithms).
func mintEdDSAWIT(t *testing.T, td string, cnf jose.JSONWebKey) (string, jose.JSONWebKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: priv, KeyID: "ed-1"}},
		(&jose.SignerOptions{}).WithType(TypeWIT))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := jwt.Signed(s).Claims(map[string]any{"sub": "spiffe://" + td + "/workload", "iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), "jti": randomID(), "cnf": map[string]any{"jwk": cnf}}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok, jose.JSONWebKey{Key: pub, KeyID: "ed-1", Algorithm: string(jose.EdDSA)}
}

// Issue 11 item 6: WITs of another trust domain signed with EdDSA are
// accepted when the operator allows EdDSA for that domain.
func TestWITEdDSAFromAllowedTrustDomain(t *testing.T) {
	wl, _ := keys.Generate(cose.AlgorithmES256)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name string
		cnf  jose.JSONWebKey
	}{
		{"ES256 cnf", jose.JSONWebKey{Key: wl.Signer.Public(), Algorithm: "ES256"}},
		{"EdDSA cnf", jose.JSONWebKey{Key: edPub, Algorithm: "EdDSA"}},
	} {
		tok, issuerKey := mintEdDSAWIT(t, "partner.example", tc.cnf)
		b := &Bundle{TrustDomain: "partner.example", Keys: []jose.JSONWebKey{issuerKey}}
		if _, err := ParseWIT(tok, Bundles{b}); !errors.Is(err, ErrUnsupportedAlgorithm) {
			t.Fatalf("%s: EdDSA WIT without the operator's consent: err = %v, want ErrUnsupportedAlgorithm", tc.name, err)
		}
		algs, err := ParseAlgorithms([]string{"EdDSA", "ES256"})
		if err != nil {
			t.Fatal(err)
		}
		b.Algorithms = algs
		w, err := ParseWIT(tok, Bundles{b})
		if err != nil {
			t.Fatalf("%s: EdDSA WIT from an allowed domain: %v", tc.name, err)
		}
		if w.Algorithm != jose.EdDSA || w.Key.Algorithm != tc.cnf.Algorithm {
			t.Fatalf("%s: WIT = %+v", tc.name, w)
		}
		if tc.cnf.Algorithm == "EdDSA" { // and its WPT verifies under the EdDSA cnf key
			s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: edPriv}, (&jose.SignerOptions{}).WithType(TypeWPT))
			wpt, _ := jwt.Signed(s).Claims(map[string]any{"aud": "https://ts.example/x", "iat": time.Now().Unix(),
				"exp": time.Now().Add(time.Minute).Unix(), "jti": randomID(), "wth": witHash(tok)}).Serialize()
			if _, err := VerifyWPT(wpt, w, ProofPolicy{Audiences: []string{"https://ts.example/x"}, Replay: NewReplayCache(2)}); err != nil {
				t.Fatalf("EdDSA WPT: %v", err)
			}
		}
	}
	if _, err := ParseAlgorithms([]string{"HS256"}); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Fatalf("HS256 allowed: err = %v", err)
	}
}
