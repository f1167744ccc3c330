package identity

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/trustfabric/trustfabric/pkg/workload"
)

// Issue 11 item 8: DPoP proofs sent with garbage CI tokens filled the replay
// cache, after which every genuine exchange got "replay cache full".
func TestAttackDPoPFloodWithGarbageTokensDoesNotFillReplayCache(t *testing.T) {
	const capacity = 16
	e := newEnvWith(t, nil, WithReplayCapacity(capacity))
	garbage := []string{"garbage", "a.b.c", mustMint(t, e)[:40] + ".x.y"}
	for i := range 4 * capacity {
		form := url.Values{"grant_type": {wimse.GrantTypeTokenExchange}, "subject_token": {garbage[i%len(garbage)]},
			"subject_token_type": {wimse.TokenTypeIDToken}}
		proof, err := workload.NewDPoPProof(newKey(t), e.s.TokenURL()) // a throwaway key each time
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", e.s.TokenURL(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("garbage token %d: status %d, want 400", i, resp.StatusCode)
		}
	}
	if n := e.s.dpop.(*wimse.ReplayCache).Len(); n != 0 {
		t.Fatalf("the DPoP replay cache holds %d ids from unauthenticated requests", n)
	}
	for i := range 3 {
		if err := e.exchangeErr(t, mustMint(t, e)); err != nil {
			t.Fatalf("genuine exchange %d after the flood: %v", i, err)
		}
	}
}

// A DPoP proof is still single use once its CI token verified.
func TestDPoPRecordedAfterGenuineExchange(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.exchangeErr(t, mustMint(t, e)); err != nil {
		t.Fatal(err)
	}
	if n := e.s.dpop.(*wimse.ReplayCache).Len(); n != 1 {
		t.Fatalf("DPoP replay cache holds %d ids after one exchange, want 1", n)
	}
}

// Issue 11 item 8: GitHub and GitLab always send a jti; a token without one
// could be exchanged again and again.
func TestAttackCITokenWithoutJTI(t *testing.T) {
	e := newEnv(t, nil)
	gh := e.gh.Claims(oidctest.GitHubRun{}, e.srv.URL)
	delete(gh, "jti")
	gl := e.gl.Claims(oidctest.GitLabJob{}, e.srv.URL)
	delete(gl, "jti")
	for name, tc := range map[string]struct {
		iss interface {
			Mint(map[string]any) (string, error)
		}
		claims map[string]any
	}{"github": {e.gh, gh}, "gitlab": {e.gl, gl}} {
		tok, err := tc.iss.Mint(tc.claims)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := e.exchangeErr(t, tok); !errors.Is(err, ErrClaims) {
				t.Fatalf("%s token without jti: err = %v, want ErrClaims", name, err)
			}
		}
	}
	// Kubernetes tokens may lack a jti (not every API server sends one).
	k := e.k8s.Claims(oidctest.Pod{}, e.srv.URL)
	delete(k, "jti")
	tok, _ := e.k8s.Mint(k)
	if err := e.exchangeErr(t, tok); err != nil {
		t.Fatalf("kubernetes token without jti: %v", err)
	}
}

// Issue 11 item 8: every forged token with an unknown kid made the server
// fetch the issuer's JWKS (50 tokens, 50 fetches).
func TestAttackUnknownKidDoesNotFetchJWKSEachTime(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.exchangeErr(t, mustMint(t, e)); err != nil {
		t.Fatal(err)
	}
	before := e.gh.JWKSFetches()
	attacker, err := oidctest.NewGitHub()
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	for range 50 {
		claims := attacker.Claims(oidctest.GitHubRun{}, e.srv.URL)
		claims["iss"] = e.gh.URL()
		tok, _ := attacker.Mint(claims)
		if err := e.exchangeErr(t, tok); !errors.Is(err, wimse.ErrBadSignature) {
			t.Fatalf("forged token: err = %v, want ErrBadSignature", err)
		}
	}
	if n := e.gh.JWKSFetches() - before; n > 1 {
		t.Fatalf("50 forged tokens with unknown kids caused %d JWKS fetches, want at most 1", n)
	}
	if err := e.exchangeErr(t, mustMint(t, e)); err != nil {
		t.Fatalf("genuine exchange after the forged tokens: %v", err)
	}
}

// Tokens naming a configured issuer whose discovery fails do not each
// cause a discovery request (same rate limit as JWKS misses).
func TestAttackFailingDiscoveryNotRetriedPerToken(t *testing.T) {
	var hits atomic.Int32
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	e := newEnv(t, func(c *Config) {
		c.Providers = append(c.Providers, ProviderConfig{Type: "oidc", Issuer: down.URL, Audience: c.Issuer})
	})
	attacker, err := oidctest.NewGitHub()
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	for range 20 {
		claims := attacker.Claims(oidctest.GitHubRun{}, e.srv.URL)
		claims["iss"] = down.URL
		tok, _ := attacker.Mint(claims)
		if err := e.exchangeErr(t, tok); !errors.Is(err, ErrIssuerUnavailable) {
			t.Fatalf("err = %v, want ErrIssuerUnavailable", err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("20 tokens for an unreachable issuer caused %d discovery requests, want 1", n)
	}
}
