package identity

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/exp/bundle/witbundle"
	"github.com/spiffe/go-spiffe/v2/exp/svid/witsvid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/trustfabric/trustfabric/pkg/workload"
)

const td = "ci.example.org"

type testEnv struct {
	gh   *oidctest.GitHub
	gl   *oidctest.GitLab
	k8s  *oidctest.Kubernetes
	srv  *httptest.Server
	s    *Server
	logs *bytes.Buffer
}

// newEnv starts the three fake issuers and an identity server trusting them
// (mutate edits the configuration first).
func newEnv(t testing.TB, mutate func(*Config)) *testEnv {
	t.Helper()
	return newEnvWith(t, mutate)
}

// newEnvWith is newEnv with further server options.
func newEnvWith(t testing.TB, mutate func(*Config), opts ...Option) *testEnv {
	t.Helper()
	gh, err := oidctest.NewGitHub()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	gl, err := oidctest.NewGitLab()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gl.Close)
	k8s, err := oidctest.NewKubernetes()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k8s.Close)
	srv := httptest.NewServer(nil)
	t.Cleanup(srv.Close)
	cfg := Config{
		TrustDomain: td, Issuer: srv.URL,
		Providers: []ProviderConfig{
			{Type: "github", Issuer: gh.URL(), Audience: srv.URL},
			{Type: "gitlab", Issuer: gl.URL(), Audience: srv.URL},
			{Type: "kubernetes", Issuer: k8s.URL(), Audience: srv.URL, Cluster: "prod-1"},
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	logs := &bytes.Buffer{}
	s, err := New(context.Background(), cfg, append([]Option{WithLogger(slog.New(slog.NewTextHandler(logs, nil)))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = s
	return &testEnv{gh: gh, gl: gl, k8s: k8s, srv: srv, s: s, logs: logs}
}

func newKey(t testing.TB) *keys.PrivateKey {
	t.Helper()
	k, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// runnerToken asks the fake runner endpoint for a token, as a job would.
func runnerToken(t testing.TB, gh *oidctest.GitHub, aud string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", gh.RequestURL()+"&audience="+url.QueryEscape(aud), nil)
	req.Header.Set("Authorization", "Bearer "+gh.RequestToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ Value string }
	if err := decodeJSON(resp, &v); err != nil || v.Value == "" {
		t.Fatalf("runner token: %v", err)
	}
	return v.Value
}

// tokenRequest builds a POST /token request with a DPoP proof of key.
func (e *testEnv) tokenRequest(t testing.TB, ciToken, tokenType string, key *keys.PrivateKey) *http.Request {
	t.Helper()
	proof, err := workload.NewDPoPProof(key, e.s.TokenURL())
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {wimse.GrantTypeTokenExchange}, "subject_token": {ciToken}, "subject_token_type": {tokenType}}
	r := httptest.NewRequest("POST", e.s.TokenURL(), strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("DPoP", proof)
	return r
}

// exchangeErr runs one exchange in process and returns its error.
func (e *testEnv) exchangeErr(t testing.TB, ciToken string) error {
	t.Helper()
	_, _, _, err := e.s.exchange(e.tokenRequest(t, ciToken, wimse.TokenTypeIDToken, newKey(t)))
	return err
}

// validateWITSVID checks a WIT with go-spiffe against the served bundle.
func (e *testEnv) validateWITSVID(t testing.TB, wit string) *witsvid.SVID {
	t.Helper()
	resp, err := http.Get(e.srv.URL + wimse.BundlePath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	b, err := witbundle.Parse(spiffeid.RequireTrustDomainFromString(td), buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	svid, err := witsvid.ParseAndValidate(wit, b)
	if err != nil {
		t.Fatalf("go-spiffe witsvid rejects the WIT: %v", err)
	}
	return svid
}

func TestExchangeGitHubPassesWITSVID(t *testing.T) {
	e := newEnv(t, nil)
	key := newKey(t)
	wit, err := workload.Exchange(context.Background(), e.srv.URL, runnerToken(t, e.gh, e.srv.URL), key)
	if err != nil {
		t.Fatal(err)
	}
	svid := e.validateWITSVID(t, wit)
	want := "spiffe://ci.example.org/github/acme/widgets/.github/workflows/release.yml/refs/heads/main"
	if svid.ID.String() != want {
		t.Errorf("sub = %s, want %s", svid.ID, want)
	}
	w, err := wimse.ParseWIT(wit, wimse.Bundles{e.s.Bundle()})
	if err != nil {
		t.Fatal(err)
	}
	if tp := key.KeyID(); w.Key.Algorithm != "ES256" || !sameKey(t, w, tp) {
		t.Error("cnf.jwk is not the DPoP key")
	}
	ci := string(w.Claims[CIClaim])
	for _, want := range []string{`"repository_id":"89012345"`, `"repository_owner_id":"1234567"`, `"provider":"github"`} {
		if !strings.Contains(ci, want) {
			t.Errorf("CI claims %s lack %s", ci, want)
		}
	}
	if w.Expiry.Sub(w.IssuedAt) > MaxWITLifetime {
		t.Errorf("WIT lives %s", w.Expiry.Sub(w.IssuedAt))
	}
}

func sameKey(t testing.TB, w *wimse.WIT, thumbprint string) bool {
	got, err := w.Key.Thumbprint(cryptoSHA256)
	if err != nil {
		t.Fatal(err)
	}
	return b64(got) == thumbprint
}

func TestExchangeGitLabPassesWITSVID(t *testing.T) {
	e := newEnv(t, nil)
	tok, err := e.gl.MintJob(oidctest.GitLabJob{Ref: "feature/x@y"}, e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	wit, err := workload.Exchange(context.Background(), e.srv.URL, tok, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	svid := e.validateWITSVID(t, wit)
	host := strings.TrimPrefix(e.gl.URL(), "http://")
	want := "spiffe://ci.example.org/gitlab/" + wimse.EncodeSegment(host) + "/acme/platform/widgets/feature_2Fx_40y"
	if svid.ID.String() != want {
		t.Errorf("sub = %s, want %s", svid.ID, want)
	}
}

func TestExchangeKubernetesPassesWITSVID(t *testing.T) {
	e := newEnv(t, nil)
	tok, err := e.k8s.MintPod(oidctest.Pod{}, e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	wit, err := workload.Exchange(context.Background(), e.srv.URL, tok, newKey(t), workload.WithSubjectTokenType(wimse.TokenTypeJWT))
	if err != nil {
		t.Fatal(err)
	}
	svid := e.validateWITSVID(t, wit)
	if want := "spiffe://ci.example.org/k8s/prod-1/ns/ci/sa/builder"; svid.ID.String() != want {
		t.Errorf("sub = %s, want %s", svid.ID, want)
	}
}

func TestOddBranchNamesGiveValidDistinctIdentifiers(t *testing.T) {
	e := newEnv(t, nil)
	seen := map[string]string{}
	for _, ref := range []string{"refs/heads/feature/x@y", "refs/heads/release+1", "refs/heads/a:b", "refs/heads/feature_x_40y", "refs/heads/feature/x_40y"} {
		tok, err := e.gh.MintRun(oidctest.GitHubRun{Ref: ref}, e.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		wit, err := workload.Exchange(context.Background(), e.srv.URL, tok, newKey(t))
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		svid := e.validateWITSVID(t, wit)
		id := wimse.RequireIdentifier(svid.ID.String())
		if prev, dup := seen[id.String()]; dup {
			t.Fatalf("%s and %s collide on %s", ref, prev, id)
		}
		seen[id.String()] = ref
		segs, err := id.Segments()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(segs[6:], "/"); got != ref {
			t.Errorf("decoded ref %q, want %q (id %s)", got, ref, id)
		}
	}
}

func TestWITNeverOutlivesCIToken(t *testing.T) {
	e := newEnv(t, nil)
	claims := e.gh.Claims(oidctest.GitHubRun{}, e.srv.URL)
	exp := e.s.now().Add(90 * 1e9).Unix()
	claims["exp"] = exp
	tok, _ := e.gh.Mint(claims)
	wit, err := workload.Exchange(context.Background(), e.srv.URL, tok, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	w, err := wimse.ParseWIT(wit, wimse.Bundles{e.s.Bundle()})
	if err != nil {
		t.Fatal(err)
	}
	if w.Expiry.Unix() != exp {
		t.Errorf("WIT exp %d, CI token exp %d", w.Expiry.Unix(), exp)
	}
}

func TestBundleEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	b, err := workload.FetchBundle(context.Background(), e.srv.URL, td, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Key(e.s.key.KeyID()); !ok || len(b.Keys) != 1 {
		t.Fatalf("bundle keys = %+v", b.Keys)
	}
}

func TestPinnedJWKS(t *testing.T) {
	dir := t.TempDir()
	var e *testEnv
	gh, _ := oidctest.NewGitHub()
	defer gh.Close()
	file := dir + "/jwks.json"
	if err := writeFile(file, gh.JWKS()); err != nil {
		t.Fatal(err)
	}
	e = newEnv(t, func(c *Config) {
		c.Providers = append(c.Providers, ProviderConfig{Type: "github", Issuer: "https://token.actions.githubusercontent.com", Audience: c.Issuer, JWKS: file})
	})
	claims := gh.Claims(oidctest.GitHubRun{}, e.srv.URL)
	claims["iss"] = "https://token.actions.githubusercontent.com"
	tok, _ := gh.Mint(claims)
	if err := e.exchangeErr(t, tok); err != nil {
		t.Fatalf("pinned JWKS: %v", err)
	}
	gh.Rotate()
	claims["jti"] = "other"
	tok, _ = gh.Mint(claims)
	if err := e.exchangeErr(t, tok); !errors.Is(err, wimse.ErrBadSignature) {
		t.Fatalf("key not in pinned JWKS: err = %v, want ErrBadSignature", err)
	}
}
