package identity

// One test per entry of issue 4's "Bad input and attacks" list; each asserts
// the rejection reason with errors.Is / errors.As.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/trustfabric/trustfabric/pkg/workload"
)

func TestAttackWrongAudience(t *testing.T) {
	e := newEnv(t, nil)
	// GitHub's default audience (the owner URL) is what most relying parties accept.
	tok := runnerToken(t, e.gh, "")
	if err := e.exchangeErr(t, tok); !errors.Is(err, wimse.ErrAudience) {
		t.Fatalf("err = %v, want ErrAudience", err)
	}
}

func TestAttackExpiredCIToken(t *testing.T) {
	e := newEnv(t, nil)
	e.gh.SetClock(func() time.Time { return time.Now().Add(-20 * time.Minute) })
	tok, _ := e.gh.MintRun(oidctest.GitHubRun{}, e.srv.URL)
	if err := e.exchangeErr(t, tok); !errors.Is(err, wimse.ErrExpired) {
		t.Fatalf("err = %v, want ErrExpired", err)
	}
}

func TestAttackExpiredBeyondLeewayOnly(t *testing.T) {
	e := newEnv(t, nil)
	claims := e.gh.Claims(oidctest.GitHubRun{}, e.srv.URL)
	claims["exp"] = time.Now().Add(-30 * time.Second).Unix() // within the 60 s leeway, but nothing left to issue
	tok, _ := e.gh.Mint(claims)
	if err := e.exchangeErr(t, tok); !errors.Is(err, wimse.ErrExpired) {
		t.Fatalf("err = %v, want ErrExpired (no WIT past the CI token's exp)", err)
	}
}

func TestAttackNotYetValidCIToken(t *testing.T) {
	e := newEnv(t, nil)
	e.k8s.SetClock(func() time.Time { return time.Now().Add(10 * time.Minute) })
	tok, _ := e.k8s.MintPod(oidctest.Pod{}, e.srv.URL)
	if err := e.exchangeErr(t, tok); !errors.Is(err, wimse.ErrNotYetValid) {
		t.Fatalf("err = %v, want ErrNotYetValid", err)
	}
}

func craftJWT(t *testing.T, header map[string]any, claims map[string]any, sig string) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." + sig
}

func TestAttackAlgNone(t *testing.T) {
	e := newEnv(t, nil)
	tok := craftJWT(t, map[string]any{"alg": "none", "typ": "JWT"}, e.gh.Claims(oidctest.GitHubRun{}, e.srv.URL), "")
	if err := e.exchangeErr(t, tok); !errors.Is(err, wimse.ErrUnsupportedAlgorithm) {
		t.Fatalf("err = %v, want ErrUnsupportedAlgorithm", err)
	}
}

func TestAttackHS256WithPublicKey(t *testing.T) {
	e := newEnv(t, nil)
	// The classic confusion: HMAC keyed with the issuer's public key bytes.
	secret, _ := json.Marshal(jose.JSONWebKey{Key: e.gh.PublicKey()})
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: secret, KeyID: e.gh.KeyID()}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := jwt.Signed(s).Claims(e.gh.Claims(oidctest.GitHubRun{}, e.srv.URL)).Serialize()
	if err := e.exchangeErr(t, tok); !errors.Is(err, wimse.ErrUnsupportedAlgorithm) {
		t.Fatalf("err = %v, want ErrUnsupportedAlgorithm", err)
	}
}

func TestAttackRotatedOutKid(t *testing.T) {
	e := newEnv(t, nil)
	old, _ := e.gh.MintRun(oidctest.GitHubRun{}, e.srv.URL)
	if err := e.gh.Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := e.exchangeErr(t, old); !errors.Is(err, wimse.ErrBadSignature) {
		t.Fatalf("err = %v, want ErrBadSignature", err)
	}
	fresh, _ := e.gh.MintRun(oidctest.GitHubRun{}, e.srv.URL)
	if err := e.exchangeErr(t, fresh); err != nil {
		t.Fatalf("token under the new key: %v", err)
	}
}

func TestAttackUnknownKid(t *testing.T) {
	e := newEnv(t, nil)
	attacker, _ := oidctest.NewGitHub()
	defer attacker.Close()
	claims := attacker.Claims(oidctest.GitHubRun{}, e.srv.URL)
	claims["iss"] = e.gh.URL() // claims to be the trusted issuer, signed with another key
	tok, _ := attacker.Mint(claims)
	if err := e.exchangeErr(t, tok); !errors.Is(err, wimse.ErrBadSignature) {
		t.Fatalf("err = %v, want ErrBadSignature", err)
	}
}

func TestAttackIssuerNotInAllowList(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Providers = c.Providers[1:] }) // GitHub not trusted
	tok, _ := e.gh.MintRun(oidctest.GitHubRun{}, e.srv.URL)
	if err := e.exchangeErr(t, tok); !errors.Is(err, ErrUntrustedIssuer) {
		t.Fatalf("err = %v, want ErrUntrustedIssuer", err)
	}
}

func TestAttackIssuerPointsAtAttackerDiscovery(t *testing.T) {
	e := newEnv(t, nil)
	// A token whose iss is the attacker's own issuer, with discovery and JWKS
	// that would verify it: never fetched, since iss is not in the allow-list.
	attacker, _ := oidctest.NewGitHub()
	defer attacker.Close()
	fetched := false
	tok, _ := attacker.MintRun(oidctest.GitHubRun{}, e.srv.URL)
	if err := e.exchangeErr(t, tok); !errors.Is(err, ErrUntrustedIssuer) {
		t.Fatalf("err = %v, want ErrUntrustedIssuer", err)
	}
	// A trusted issuer URL whose discovery document names another issuer (and
	// the attacker's JWKS) is refused by discovery.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched = true
		json.NewEncoder(w).Encode(map[string]any{"issuer": attacker.URL(), "jwks_uri": attacker.URL() + "/.well-known/jwks"})
	}))
	defer evil.Close()
	e2 := newEnv(t, func(c *Config) {
		c.Providers = []ProviderConfig{{Type: "github", Issuer: evil.URL, Audience: c.Issuer}}
	})
	claims := attacker.Claims(oidctest.GitHubRun{}, e2.srv.URL)
	claims["iss"] = evil.URL
	tok, _ = attacker.Mint(claims)
	if err := e2.exchangeErr(t, tok); !errors.Is(err, ErrIssuerUnavailable) {
		t.Fatalf("err = %v, want ErrIssuerUnavailable", err)
	}
	if !fetched {
		t.Fatal("discovery was not consulted")
	}
}

func TestAttackReplayedCITokenJTI(t *testing.T) {
	e := newEnv(t, nil)
	tok, _ := e.gh.MintRun(oidctest.GitHubRun{}, e.srv.URL)
	if err := e.exchangeErr(t, tok); err != nil {
		t.Fatal(err)
	}
	if err := e.exchangeErr(t, tok); !errors.Is(err, wimse.ErrReplay) {
		t.Fatalf("err = %v, want ErrReplay", err)
	}
}

func TestAttackDPoPForDifferentKey(t *testing.T) {
	e := newEnv(t, nil)
	tok, _ := e.gh.MintRun(oidctest.GitHubRun{}, e.srv.URL)
	signer, claimed := newKey(t), newKey(t)
	// jwk header names one key, the signature is by another.
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: signer.Signer},
		(&jose.SignerOptions{}).WithType(wimse.TypeDPoP).WithHeader("jwk", jose.JSONWebKey{Key: claimed.Signer.Public()}))
	proof, _ := jwt.Signed(s).Claims(map[string]any{"jti": "x1", "htm": "POST", "htu": e.s.TokenURL(), "iat": time.Now().Unix()}).Serialize()
	r := e.tokenRequest(t, tok, wimse.TokenTypeIDToken, signer)
	r.Header.Set("DPoP", proof)
	_, _, _, err := e.s.exchange(r)
	if !errors.Is(err, ErrDPoP) || !errors.Is(err, wimse.ErrBadSignature) {
		t.Fatalf("err = %v, want ErrDPoP + ErrBadSignature", err)
	}
}

func TestAttackDPoPForDifferentURL(t *testing.T) {
	e := newEnv(t, nil)
	tok, _ := e.gh.MintRun(oidctest.GitHubRun{}, e.srv.URL)
	key := newKey(t)
	proof, _ := workload.NewDPoPProof(key, "https://other.example/token")
	r := e.tokenRequest(t, tok, wimse.TokenTypeIDToken, key)
	r.Header.Set("DPoP", proof)
	_, _, _, err := e.s.exchange(r)
	if !errors.Is(err, ErrDPoP) || !errors.Is(err, wimse.ErrAudience) {
		t.Fatalf("err = %v, want ErrDPoP + ErrAudience", err)
	}
}

func TestAttackDPoPReplayed(t *testing.T) {
	e := newEnv(t, nil)
	key := newKey(t)
	r1 := e.tokenRequest(t, mustMint(t, e), wimse.TokenTypeIDToken, key)
	if _, _, _, err := e.s.exchange(r1); err != nil {
		t.Fatal(err)
	}
	r2 := e.tokenRequest(t, mustMint(t, e), wimse.TokenTypeIDToken, key)
	r2.Header.Set("DPoP", r1.Header.Get("DPoP"))
	if _, _, _, err := e.s.exchange(r2); !errors.Is(err, ErrDPoP) || !errors.Is(err, wimse.ErrReplay) {
		t.Fatalf("err = %v, want ErrDPoP + ErrReplay", err)
	}
}

func TestAttackMissingDPoP(t *testing.T) {
	e := newEnv(t, nil)
	r := e.tokenRequest(t, mustMint(t, e), wimse.TokenTypeIDToken, newKey(t))
	r.Header.Del("DPoP")
	if _, _, _, err := e.s.exchange(r); !errors.Is(err, ErrDPoP) {
		t.Fatalf("err = %v, want ErrDPoP", err)
	}
}

func mustMint(t *testing.T, e *testEnv) string {
	tok, err := e.gh.MintRun(oidctest.GitHubRun{}, e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAttackPullRequestTarget(t *testing.T) {
	e := newEnv(t, nil)
	tok, _ := e.gh.MintRun(oidctest.GitHubRun{EventName: "pull_request_target"}, e.srv.URL)
	if err := e.exchangeErr(t, tok); !errors.Is(err, ErrPolicy) {
		t.Fatalf("err = %v, want ErrPolicy", err)
	}
	allowed := newEnv(t, func(c *Config) { c.Providers[0].AllowPullRequestTargetUnsafe = true })
	tok, _ = allowed.gh.MintRun(oidctest.GitHubRun{EventName: "pull_request_target"}, allowed.srv.URL)
	if err := allowed.exchangeErr(t, tok); err != nil {
		t.Fatalf("with allowPullRequestTargetUnsafe: %v", err)
	}
}

func TestAttackGitLabForkMergeRequest(t *testing.T) {
	e := newEnv(t, nil)
	fork := oidctest.GitLabJob{PipelineSource: "merge_request_event", ProjectID: "999", ProjectPath: "mallory/widgets",
		NamespacePath: "mallory", NamespaceID: "998", JobProjectID: "4242", JobProjectPath: "acme/platform/widgets"}
	tok, _ := e.gl.MintJob(fork, e.srv.URL)
	if err := e.exchangeErr(t, tok); !errors.Is(err, ErrPolicy) {
		t.Fatalf("fork MR: err = %v, want ErrPolicy", err)
	}
	same, _ := e.gl.MintJob(oidctest.GitLabJob{PipelineSource: "merge_request_event"}, e.srv.URL)
	if err := e.exchangeErr(t, same); err != nil {
		t.Fatalf("same-project MR: %v", err)
	}
}

func TestAttackOwnerNotAllowed(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Providers[0].Allow = map[string][]string{"repository_owner": {"acme"}, "repository_id": {"89012345"}}
	})
	tok, _ := e.gh.MintRun(oidctest.GitHubRun{Owner: "mallory"}, e.srv.URL)
	if err := e.exchangeErr(t, tok); !errors.Is(err, ErrPolicy) {
		t.Fatalf("other owner: err = %v, want ErrPolicy", err)
	}
	// Same name, new repository id (a re-created or transferred repository).
	tok, _ = e.gh.MintRun(oidctest.GitHubRun{RepoID: "1"}, e.srv.URL)
	if err := e.exchangeErr(t, tok); !errors.Is(err, ErrPolicy) {
		t.Fatalf("other repository_id: err = %v, want ErrPolicy", err)
	}
	tok, _ = e.gh.MintRun(oidctest.GitHubRun{}, e.srv.URL)
	if err := e.exchangeErr(t, tok); err != nil {
		t.Fatalf("allowed repository: %v", err)
	}
}

func TestAttackIdentifierOver2048Bytes(t *testing.T) {
	e := newEnv(t, nil)
	tok, _ := e.gh.MintRun(oidctest.GitHubRun{Ref: "refs/heads/" + strings.Repeat("x", 2100)}, e.srv.URL)
	if err := e.exchangeErr(t, tok); !errors.Is(err, wimse.ErrInvalidIdentifier) {
		t.Fatalf("err = %v, want ErrInvalidIdentifier", err)
	}
}

func TestAttackOversizeFormBody(t *testing.T) {
	e := newEnv(t, nil)
	body := "grant_type=" + url.QueryEscape(wimse.GrantTypeTokenExchange) + "&subject_token=" + strings.Repeat("a", MaxFormSize)
	r := httptest.NewRequest("POST", e.s.TokenURL(), strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, _, _, err := e.s.exchange(r); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	// Over HTTP: 413 with an RFC 6749 JSON error.
	resp, err := http.Post(e.s.TokenURL(), "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var oe struct{ Error string }
	decodeJSON(resp, &oe)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || oe.Error != "invalid_request" {
		t.Fatalf("status %d error %q", resp.StatusCode, oe.Error)
	}
}

func TestAttackOversizeCIToken(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.exchangeErr(t, strings.Repeat("a", MaxCITokenSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestOAuthErrorsOverHTTP(t *testing.T) {
	e := newEnv(t, nil)
	_, err := workload.Exchange(context.Background(), e.srv.URL, runnerToken(t, e.gh, "https://wrong.example"), newKey(t))
	var xe *workload.ExchangeError
	if !errors.As(err, &xe) || xe.Code != "invalid_request" || xe.Status != 400 || !errors.Is(err, workload.ErrExchange) {
		t.Fatalf("err = %v", err)
	}
	resp, err := http.PostForm(e.s.TokenURL(), url.Values{"grant_type": {"password"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var oe struct{ Error string }
	decodeJSON(resp, &oe)
	if oe.Error != "unsupported_grant_type" {
		t.Fatalf("error %q, want unsupported_grant_type", oe.Error)
	}
}

func TestServerNeverLogsTokenOrKey(t *testing.T) {
	e := newEnv(t, nil)
	key := newKey(t)
	tok := runnerToken(t, e.gh, e.srv.URL)
	wit, err := workload.Exchange(context.Background(), e.srv.URL, tok, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := workload.Exchange(context.Background(), e.srv.URL, tok, key); err == nil { // a refused replay is logged too
		t.Fatal("replay accepted")
	}
	bad := runnerToken(t, e.gh, "https://wrong.example")
	if _, err := workload.Exchange(context.Background(), e.srv.URL, bad, key); err == nil {
		t.Fatal("wrong audience accepted")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "WIT issued") || !strings.Contains(logs, "token refused") {
		t.Fatalf("decisions not logged: %s", logs)
	}
	priv, _ := json.Marshal(key.PrivateJWK())
	var jwk map[string]string
	json.Unmarshal(priv, &jwk)
	for name, secret := range map[string]string{
		"CI token payload": strings.Split(tok, ".")[1], "CI token signature": strings.Split(tok, ".")[2],
		"bad CI token": strings.Split(bad, ".")[2], "WIT": strings.Split(wit, ".")[2],
		"WIT payload": strings.Split(wit, ".")[1][:40], "workload private key": jwk["d"],
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain the %s", name)
		}
	}
}
