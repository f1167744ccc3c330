package citest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GitLabJob describes the GitLab CI job whose ID tokens the fake mints.
// Zero fields get the values of a pipeline on main of acme/app.
type GitLabJob struct {
	ProjectPath    string // group/project
	ProjectID      string
	NamespaceID    string
	Ref            string // branch or tag name
	RefType        string // branch or tag
	RefProtected   string // "true" or "false"
	SHA            string
	PipelineID     string
	PipelineSource string // push, merge_request_event, …
	JobID          string
	UserLogin      string
}

func (j GitLabJob) withDefaults() GitLabJob {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&j.ProjectPath, "acme/app")
	def(&j.ProjectID, "4200001")
	def(&j.NamespaceID, "4100001")
	def(&j.Ref, "main")
	def(&j.RefType, "branch")
	def(&j.RefProtected, "true")
	def(&j.SHA, strings.Repeat("b2", 20))
	def(&j.PipelineID, "800000001")
	def(&j.PipelineSource, "push")
	def(&j.JobID, "7000000001")
	def(&j.UserLogin, "maintainer")
	return j
}

// GitLabOIDC stands in for a GitLab instance's OIDC issuer (discovery at
// /.well-known/openid-configuration, keys at /oauth/discovery/keys) and mints
// the ID tokens GitLab puts into id_tokens variables, with GitLab's claim set.
// The issuer is the URL the fake is served at, like a self-managed instance.
type GitLabOIDC struct {
	job  GitLabJob
	key  *rsa.PrivateKey
	kid  string
	mu   sync.Mutex
	base string
	n    int
}

// NewGitLabOIDC makes an issuer for job with a fresh RSA-2048 key.
func NewGitLabOIDC(job GitLabJob) (*GitLabOIDC, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate issuer key: %w", err)
	}
	sum := sha256.Sum256(key.PublicKey.N.Bytes())
	return &GitLabOIDC{job: job.withDefaults(), key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:])}, nil
}

// SetBaseURL sets the instance URL, which is the iss of minted tokens.
func (g *GitLabOIDC) SetBaseURL(u string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.base = strings.TrimSuffix(u, "/")
}

// Issuer is the iss of minted tokens.
func (g *GitLabOIDC) Issuer() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.base
}

// ServeHTTP serves discovery and the JWKS.
func (g *GitLabOIDC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	iss := g.Issuer()
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		writeJSON(w, map[string]any{
			"issuer":                                iss,
			"jwks_uri":                              iss + "/oauth/discovery/keys",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	case "/oauth/discovery/keys":
		pub := g.key.PublicKey
		writeJSON(w, map[string]any{"keys": []map[string]any{{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": g.kid,
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	default:
		http.NotFound(w, r)
	}
}

// Mint returns the ID token GitLab would put into an id_tokens variable whose
// aud is aud.
func (g *GitLabOIDC) Mint(aud string, now time.Time) (string, error) {
	g.mu.Lock()
	g.n++
	n := g.n
	iss := g.base
	g.mu.Unlock()
	j := g.job
	ns, _, _ := strings.Cut(j.ProjectPath, "/")
	host := strings.TrimPrefix(strings.TrimPrefix(iss, "https://"), "http://")
	refPath := "refs/heads/" + j.Ref
	if j.RefType == "tag" {
		refPath = "refs/tags/" + j.Ref
	}
	jti := sha256.Sum256([]byte(iss + strconv.Itoa(n) + strconv.FormatInt(now.UnixNano(), 10)))
	claims := map[string]any{
		"namespace_id": j.NamespaceID, "namespace_path": ns,
		"project_id": j.ProjectID, "project_path": j.ProjectPath,
		"user_id": "1001", "user_login": j.UserLogin, "user_email": j.UserLogin + "@example.org",
		"user_access_level": "maintainer", "pipeline_id": j.PipelineID, "pipeline_source": j.PipelineSource,
		"job_id": j.JobID, "ref": j.Ref, "ref_type": j.RefType, "ref_path": refPath,
		"ref_protected": j.RefProtected, "runner_id": 1, "runner_environment": "self-hosted",
		"sha": j.SHA, "project_visibility": "private",
		"ci_config_ref_uri": host + "/" + j.ProjectPath + "//.gitlab-ci.yml@" + refPath,
		"ci_config_sha":     j.SHA,
		"jti":               hex.EncodeToString(jti[:16]), "iss": iss, "aud": aud,
		"sub": "project_path:" + j.ProjectPath + ":ref_type:" + j.RefType + ":ref:" + j.Ref,
		"iat": now.Unix(), "nbf": now.Add(-5 * time.Second).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
	return signRS256(g.key, map[string]any{"kid": g.kid, "typ": "JWT", "alg": "RS256"}, claims)
}
