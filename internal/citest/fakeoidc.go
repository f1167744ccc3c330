package citest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GitHubRun describes the workflow run whose tokens the fake issuer mints.
// Zero fields get the values of a push to main of acme/widgets.
type GitHubRun struct {
	Repository        string // owner/name
	RepositoryID      string
	RepositoryOwnerID string
	Actor             string
	ActorID           string
	Ref               string // refs/heads/main
	SHA               string
	EventName         string // push, pull_request, …
	WorkflowPath      string // .github/workflows/release.yml
	RunID             string
	RunAttempt        string
	Environment       string // deployment environment, optional
	Visibility        string // public, private, internal
}

func (r GitHubRun) withDefaults() GitHubRun {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&r.Repository, "acme/widgets")
	def(&r.RepositoryID, "690000001")
	def(&r.RepositoryOwnerID, "12000001")
	def(&r.Actor, "octocat")
	def(&r.ActorID, "583231")
	def(&r.Ref, "refs/heads/main")
	def(&r.SHA, strings.Repeat("a1", 20))
	def(&r.EventName, "push")
	def(&r.WorkflowPath, ".github/workflows/release.yml")
	def(&r.RunID, "9000000001")
	def(&r.RunAttempt, "1")
	def(&r.Visibility, "public")
	return r
}

// GitHubOIDC is a stand-in for GitHub Actions' OIDC issuer
// (token.actions.githubusercontent.com) and the runner's token request
// endpoint (ACTIONS_ID_TOKEN_REQUEST_URL), for tests and for offline runs of the
// self-test under act. Tokens have GitHub's header and claim set (RS256, kid
// and x5t, the documented custom claims); only iss differs: it is the URL the
// fake is served at.
type GitHubOIDC struct {
	// RequestToken is the bearer the token endpoint requires
	// (ACTIONS_ID_TOKEN_REQUEST_TOKEN).
	RequestToken string

	run  GitHubRun
	key  *rsa.PrivateKey
	kid  string
	x5t  string
	mu   sync.Mutex
	base string
	n    int
}

// NewGitHubOIDC makes an issuer for run with a fresh RSA-2048 key.
func NewGitHubOIDC(run GitHubRun) (*GitHubOIDC, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate issuer key: %w", err)
	}
	// GitHub publishes the certificate thumbprint as x5t and uses it as kid.
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fake-token.actions.githubusercontent.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-sign issuer certificate: %w", err)
	}
	sum := sha1.Sum(der)
	reqTok := make([]byte, 24)
	if _, err := rand.Read(reqTok); err != nil {
		return nil, err
	}
	return &GitHubOIDC{
		RequestToken: hex.EncodeToString(reqTok),
		run:          run.withDefaults(),
		key:          key,
		kid:          strings.ToUpper(hex.EncodeToString(sum[:])),
		x5t:          base64.RawURLEncoding.EncodeToString(sum[:]),
	}, nil
}

// SetBaseURL sets the issuer URL (scheme://host[:port], no trailing slash).
// Call it once the listener is known, before serving tokens.
func (g *GitHubOIDC) SetBaseURL(u string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.base = strings.TrimSuffix(u, "/")
}

// Issuer is the iss of minted tokens.
func (g *GitHubOIDC) Issuer() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.base
}

// RequestURL is the value for ACTIONS_ID_TOKEN_REQUEST_URL.
func (g *GitHubOIDC) RequestURL() string { return g.Issuer() + "/token?api-version=2.0" }

// Minted reports how many tokens were issued.
func (g *GitHubOIDC) Minted() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// ServeHTTP serves discovery, the JWKS and the runner token endpoint.
func (g *GitHubOIDC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		iss := g.Issuer()
		writeJSON(w, map[string]any{
			"issuer":                                iss,
			"jwks_uri":                              iss + "/.well-known/jwks",
			"subject_types_supported":               []string{"public", "pairwise"},
			"response_types_supported":              []string{"id_token"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"scopes_supported":                      []string{"openid"},
			"claims_supported": []string{"sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "sha",
				"repository", "repository_id", "repository_owner", "repository_owner_id", "run_id",
				"run_number", "run_attempt", "actor", "actor_id", "workflow", "workflow_ref",
				"workflow_sha", "head_ref", "base_ref", "event_name", "ref_type", "ref_protected",
				"environment", "job_workflow_ref", "job_workflow_sha", "repository_visibility",
				"runner_environment"},
		})
	case "/.well-known/jwks":
		pub := g.key.PublicKey
		writeJSON(w, map[string]any{"keys": []map[string]any{{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": g.kid, "x5t": g.x5t,
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	case "/token":
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(g.RequestToken)) != 1 {
			http.Error(w, "bad request token", http.StatusUnauthorized)
			return
		}
		aud := r.URL.Query().Get("audience")
		if aud == "" {
			aud = "https://github.com/" + strings.SplitN(g.run.Repository, "/", 2)[0]
		}
		tok, err := g.Mint(aud, time.Now())
		if err != nil {
			http.Error(w, "mint failed", http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]any{"count": 1, "value": tok})
	default:
		http.NotFound(w, r)
	}
}

// Mint returns a GitHub-shaped ID token for aud, issued at now.
func (g *GitHubOIDC) Mint(aud string, now time.Time) (string, error) {
	g.mu.Lock()
	g.n++
	n := g.n
	iss := g.base
	g.mu.Unlock()
	run := g.run
	owner, _, _ := strings.Cut(run.Repository, "/")
	refType := "branch"
	if strings.HasPrefix(run.Ref, "refs/tags/") {
		refType = "tag"
	}
	sub := "repo:" + run.Repository + ":ref:" + run.Ref
	switch {
	case run.Environment != "":
		sub = "repo:" + run.Repository + ":environment:" + run.Environment
	case run.EventName == "pull_request":
		sub = "repo:" + run.Repository + ":pull_request"
	}
	workflowRef := run.Repository + "/" + run.WorkflowPath + "@" + run.Ref
	jti := sha256.Sum256([]byte(iss + strconv.Itoa(n) + strconv.FormatInt(now.UnixNano(), 10)))
	claims := map[string]any{
		"jti": hex.EncodeToString(jti[:16]), "sub": sub, "aud": aud, "ref": run.Ref, "sha": run.SHA,
		"repository": run.Repository, "repository_owner": owner, "repository_owner_id": run.RepositoryOwnerID,
		"run_id": run.RunID, "run_number": "1", "run_attempt": run.RunAttempt,
		"repository_visibility": run.Visibility, "repository_id": run.RepositoryID,
		"actor_id": run.ActorID, "actor": run.Actor, "workflow": "release",
		"head_ref": "", "base_ref": "", "event_name": run.EventName, "ref_protected": "false",
		"ref_type": refType, "workflow_ref": workflowRef, "workflow_sha": run.SHA,
		"job_workflow_ref": workflowRef, "job_workflow_sha": run.SHA,
		"runner_environment": "github-hosted", "iss": iss,
		"nbf": now.Add(-5 * time.Second).Unix(), "exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(),
	}
	if run.Environment != "" {
		claims["environment"] = run.Environment
	}
	header := map[string]any{"typ": "JWT", "alg": "RS256", "x5t": g.x5t, "kid": g.kid}
	return signRS256(g.key, header, claims)
}

func signRS256(key *rsa.PrivateKey, header, claims map[string]any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
