package citest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func getJSON(t *testing.T, url, bearer string, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func TestGitHubOIDC(t *testing.T) {
	g, err := NewGitHubOIDC(GitHubRun{Repository: "acme/app", Ref: "refs/tags/v1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	g.SetBaseURL(srv.URL)

	if code := getJSON(t, g.RequestURL()+"&audience=x", "wrong", nil); code != http.StatusUnauthorized {
		t.Errorf("wrong request token: status %d, want 401", code)
	}
	var tok struct{ Value string }
	if code := getJSON(t, g.RequestURL()+"&audience=https://id.example.org", g.RequestToken, &tok); code != http.StatusOK {
		t.Fatalf("token endpoint: status %d", code)
	}
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, srv.URL+"/.well-known/openid-configuration", "", &disc)
	if disc.Issuer != srv.URL {
		t.Errorf("discovery issuer %q, want %q", disc.Issuer, srv.URL)
	}
	var jwks struct {
		Keys []struct{ Kid, N, E, Alg string }
	}
	getJSON(t, disc.JWKSURI, "", &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0].Alg != "RS256" {
		t.Fatalf("jwks = %+v", jwks)
	}

	parts := strings.Split(tok.Value, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	var header map[string]any
	var claims map[string]any
	for i, v := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	if header["alg"] != "RS256" || header["kid"] != jwks.Keys[0].Kid || header["typ"] != "JWT" {
		t.Errorf("header %v", header)
	}
	n, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].N)
	e, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("signature does not verify with the published key: %v", err)
	}
	want := map[string]any{
		"iss": srv.URL, "aud": "https://id.example.org", "sub": "repo:acme/app:ref:refs/tags/v1.2.3",
		"repository": "acme/app", "repository_owner": "acme", "ref_type": "tag",
		"workflow_ref": "acme/app/.github/workflows/release.yml@refs/tags/v1.2.3",
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	exp, iat := claims["exp"].(float64), claims["iat"].(float64)
	if exp <= iat || exp-iat > float64(10*time.Minute/time.Second) {
		t.Errorf("exp-iat = %v s", exp-iat)
	}
	if g.Minted() != 1 {
		t.Errorf("minted %d tokens, want 1", g.Minted())
	}
}

func TestGitLabOIDC(t *testing.T) {
	g, err := NewGitLabOIDC(GitLabJob{ProjectPath: "acme/app", Ref: "v2", RefType: "tag"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	g.SetBaseURL(srv.URL)
	tok, err := g.Mint("https://id.example.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, srv.URL+"/.well-known/openid-configuration", "", &disc)
	var jwks struct{ Keys []struct{ Kid, N, E string } }
	getJSON(t, disc.JWKSURI, "", &jwks)
	if disc.Issuer != srv.URL || len(jwks.Keys) != 1 {
		t.Fatalf("discovery %+v, jwks %+v", disc, jwks)
	}
	parts := strings.Split(tok, ".")
	n, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].N)
	e, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("signature: %v", err)
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"iss": srv.URL, "aud": "https://id.example.org",
		"sub": "project_path:acme/app:ref_type:tag:ref:v2", "namespace_path": "acme", "ref_path": "refs/tags/v2"} {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
}
