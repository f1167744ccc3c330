// Package oidctest provides in-process fakes of the OIDC issuers CI platforms
// run — GitHub Actions, GitLab CI and a Kubernetes API server — for tests and
// for `trustfabric quickstart`. Each fake serves OIDC discovery and a JWKS on
// loopback and mints RS256 tokens with exactly the claim set the real platform
// issues (specs/identity.md §2; GitHub docs "OpenID Connect reference",
// GitLab docs "id_token authentication", Kubernetes projected service account
// tokens). The GitHub fake also serves the runner's token request endpoint
// (ACTIONS_ID_TOKEN_REQUEST_URL), honouring the audience parameter.
//
// These are fakes of hosted services we cannot reach from tests; nothing in
// them is used to verify anything.
package oidctest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is a fake OIDC issuer on a loopback HTTP server.
type Issuer struct {
	srv      *httptest.Server
	mux      *http.ServeMux
	jwksPath string

	mu   sync.Mutex
	key  *rsa.PrivateKey
	kid  string
	now  func() time.Time
	jwks []jose.JSONWebKey
	// fetches counts JWKS requests.
	fetches int
}

// newIssuer starts an issuer whose JWKS is served at jwksPath.
func newIssuer(jwksPath string) (*Issuer, error) {
	i := &Issuer{mux: http.NewServeMux(), jwksPath: jwksPath, now: time.Now}
	if err := i.Rotate(); err != nil {
		return nil, err
	}
	i.mux.HandleFunc("GET /.well-known/openid-configuration", i.serveDiscovery)
	i.mux.HandleFunc("GET "+jwksPath, i.serveJWKS)
	i.srv = httptest.NewServer(i.mux)
	return i, nil
}

// URL is the issuer URL (the iss of its tokens).
func (i *Issuer) URL() string { return i.srv.URL }

// Close stops the server.
func (i *Issuer) Close() { i.srv.Close() }

// SetClock makes the issuer mint tokens as if now() were the time.
func (i *Issuer) SetClock(now func() time.Time) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.now = now
}

func (i *Issuer) clock() time.Time {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.now()
}

// Rotate replaces the signing key with a new RSA-2048 key; the old key is
// removed from the JWKS (rotated out).
func (i *Issuer) Rotate() error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate issuer key: %w", err)
	}
	tp, err := (&jose.JSONWebKey{Key: &k.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.key, i.kid = k, base64.RawURLEncoding.EncodeToString(tp)[:16]
	i.jwks = []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: i.kid, Algorithm: "RS256", Use: "sig"}}
	return nil
}

// JWKS returns the issuer's current public key set (for pinned-JWKS configs).
func (i *Issuer) JWKS() []byte {
	i.mu.Lock()
	defer i.mu.Unlock()
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: i.jwks})
	return b
}

// PublicKey returns the current RSA public key (used by alg-confusion tests).
func (i *Issuer) PublicKey() *rsa.PublicKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	return &i.key.PublicKey
}

// KeyID returns the kid of the current key.
func (i *Issuer) KeyID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.kid
}

// Mint signs claims as they are with the current key: RS256, typ JWT, kid.
func (i *Issuer) Mint(claims map[string]any) (string, error) {
	i.mu.Lock()
	key, kid := i.key, i.kid
	i.mu.Unlock()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		return "", fmt.Errorf("new signer: %w", err)
	}
	return jwt.Signed(s).Claims(claims).Serialize()
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer":                                i.URL(),
		"jwks_uri":                              i.URL() + i.jwksPath,
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public", "pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid"},
	})
}

// JWKSFetches returns how many times the JWKS was requested.
func (i *Issuer) JWKSFetches() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.fetches
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	i.mu.Lock()
	i.fetches++
	i.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write(i.JWKS())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
