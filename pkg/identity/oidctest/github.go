package oidctest

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// GitHubRun describes the workflow run whose tokens a GitHub fake mints.
// Zero fields get the defaults of DefaultGitHubRun.
type GitHubRun struct {
	Owner, Repo       string
	OwnerID, RepoID   string
	WorkflowFile      string // ".github/workflows/release.yml"
	Workflow          string // workflow name
	Ref               string // "refs/heads/main"
	SHA               string
	EventName         string // "push", "pull_request_target", …
	Environment       string // optional
	RunID, RunNumber  string
	RunAttempt        string
	Actor, ActorID    string
	Visibility        string // public | private | internal
	RunnerEnvironment string // github-hosted | self-hosted
	HeadRef, BaseRef  string
	// JobWorkflowRef, when set, names a called reusable workflow
	// ("org/shared/.github/workflows/build.yml@refs/tags/v1").
	JobWorkflowRef string
}

// DefaultGitHubRun is a push to main of acme/widgets running release.yml.
var DefaultGitHubRun = GitHubRun{
	Owner: "acme", Repo: "widgets", OwnerID: "1234567", RepoID: "89012345",
	WorkflowFile: ".github/workflows/release.yml", Workflow: "release",
	Ref: "refs/heads/main", SHA: "d9a3e6f3c4b2a1908f7e6d5c4b3a29180706f5e4",
	EventName: "push", RunID: "9876543210", RunNumber: "42", RunAttempt: "1",
	Actor: "octocat", ActorID: "583231", Visibility: "private", RunnerEnvironment: "github-hosted",
}

func (r GitHubRun) withDefaults() GitHubRun {
	d := DefaultGitHubRun
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&d.Owner, r.Owner)
	set(&d.Repo, r.Repo)
	set(&d.OwnerID, r.OwnerID)
	set(&d.RepoID, r.RepoID)
	set(&d.WorkflowFile, r.WorkflowFile)
	set(&d.Workflow, r.Workflow)
	set(&d.Ref, r.Ref)
	set(&d.SHA, r.SHA)
	set(&d.EventName, r.EventName)
	set(&d.RunID, r.RunID)
	set(&d.RunNumber, r.RunNumber)
	set(&d.RunAttempt, r.RunAttempt)
	set(&d.Actor, r.Actor)
	set(&d.ActorID, r.ActorID)
	set(&d.Visibility, r.Visibility)
	set(&d.RunnerEnvironment, r.RunnerEnvironment)
	d.Environment, d.HeadRef, d.BaseRef, d.JobWorkflowRef = r.Environment, r.HeadRef, r.BaseRef, r.JobWorkflowRef
	return d
}

// GitHub fakes token.actions.githubusercontent.com and the runner's token
// request endpoint.
//
// On GitHub, ACTIONS_ID_TOKEN_REQUEST_TOKEN is the job's own runtime token, so
// the token service knows which job asks and mints that job's claims (a job
// of a called reusable workflow gets its job_workflow_ref). The fake does the
// same: RequestToken mints for the current run (SetRun), and each token
// AddJob returns mints for the run given there.
type GitHub struct {
	*Issuer
	// RequestToken is the bearer the runner endpoint requires
	// (ACTIONS_ID_TOKEN_REQUEST_TOKEN).
	RequestToken string

	mu   sync.Mutex
	run  GitHubRun
	jobs map[string]GitHubRun // request token → the run of that job
}

// NewGitHub starts a GitHub Actions issuer fake with DefaultGitHubRun.
func NewGitHub() (*GitHub, error) {
	iss, err := newIssuer("/.well-known/jwks")
	if err != nil {
		return nil, err
	}
	g := &GitHub{Issuer: iss, RequestToken: randomID(), run: DefaultGitHubRun}
	iss.mux.HandleFunc("GET /_apis/actions/oidc/token", g.serveRunnerToken)
	return g, nil
}

// SetRun changes the run whose tokens the runner endpoint mints.
func (g *GitHub) SetRun(r GitHubRun) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.run = r.withDefaults()
}

// AddJob returns a new request token (the ACTIONS_ID_TOKEN_REQUEST_TOKEN of
// another job) for which the runner endpoint mints tokens of run, e.g. the
// current run with JobWorkflowRef naming a called reusable workflow. Zero
// fields of run take DefaultGitHubRun's values.
func (g *GitHub) AddJob(run GitHubRun) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	tok := randomID()
	if g.jobs == nil {
		g.jobs = map[string]GitHubRun{}
	}
	g.jobs[tok] = run.withDefaults()
	return tok
}

// Run returns the current run.
func (g *GitHub) Run() GitHubRun {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.run
}

// Claims returns the claim set GitHub puts in an Actions OIDC token for run
// and audience: standard claims (jti, sub, aud, iss, iat, nbf = iat − 10 min,
// exp = iat + 5 min) and the custom claims, all strings.
func (g *GitHub) Claims(run GitHubRun, aud string) map[string]any {
	r := run.withDefaults()
	now := g.clock()
	repo := r.Owner + "/" + r.Repo
	sub := "repo:" + repo + ":ref:" + r.Ref
	switch {
	case r.Environment != "":
		sub = "repo:" + repo + ":environment:" + r.Environment
	case r.EventName == "pull_request":
		sub = "repo:" + repo + ":pull_request"
	}
	workflowRef := repo + "/" + r.WorkflowFile + "@" + r.Ref
	jobRef, jobSHA := workflowRef, r.SHA
	if r.JobWorkflowRef != "" {
		jobRef = r.JobWorkflowRef
	}
	refType := "branch"
	if strings.HasPrefix(r.Ref, "refs/tags/") {
		refType = "tag"
	}
	if aud == "" {
		aud = "https://github.com/" + r.Owner
	}
	c := map[string]any{
		"jti": randomID(), "sub": sub, "aud": aud,
		"ref": r.Ref, "sha": r.SHA, "repository": repo, "repository_owner": r.Owner,
		"actor_id": r.ActorID, "repository_visibility": r.Visibility, "repository_id": r.RepoID,
		"repository_owner_id": r.OwnerID, "run_id": r.RunID, "run_number": r.RunNumber, "run_attempt": r.RunAttempt,
		"runner_environment": r.RunnerEnvironment, "actor": r.Actor, "workflow": r.Workflow,
		"head_ref": r.HeadRef, "base_ref": r.BaseRef, "event_name": r.EventName, "ref_type": refType,
		"ref_protected": fmt.Sprint(refType == "branch" && r.Ref == "refs/heads/main"),
		"workflow_ref":  workflowRef, "workflow_sha": r.SHA, "job_workflow_ref": jobRef, "job_workflow_sha": jobSHA,
		"check_run_id": "31415926535",
		"iss":          g.URL(), "nbf": now.Add(-10 * 60e9).Unix(), "exp": now.Add(5 * 60e9).Unix(), "iat": now.Unix(),
	}
	if r.Environment != "" {
		c["environment"] = r.Environment
	}
	return c
}

// MintRun mints a token for run and audience.
func (g *GitHub) MintRun(run GitHubRun, aud string) (string, error) {
	return g.Mint(g.Claims(run, aud))
}

// RequestURL is the value of ACTIONS_ID_TOKEN_REQUEST_URL (it already has a
// query, as on real runners).
func (g *GitHub) RequestURL() string { return g.URL() + "/_apis/actions/oidc/token?api-version=2.0" }

// Env returns the runner environment of the current run: the OIDC request
// variables plus the GITHUB_* variables a job sees.
func (g *GitHub) Env() map[string]string {
	r := g.Run()
	return map[string]string{
		"CI": "true", "GITHUB_ACTIONS": "true",
		"ACTIONS_ID_TOKEN_REQUEST_URL": g.RequestURL(), "ACTIONS_ID_TOKEN_REQUEST_TOKEN": g.RequestToken,
		"GITHUB_REPOSITORY": r.Owner + "/" + r.Repo, "GITHUB_REPOSITORY_OWNER": r.Owner,
		"GITHUB_REPOSITORY_ID": r.RepoID, "GITHUB_REPOSITORY_OWNER_ID": r.OwnerID,
		"GITHUB_REF": r.Ref, "GITHUB_SHA": r.SHA, "GITHUB_EVENT_NAME": r.EventName,
		"GITHUB_RUN_ID": r.RunID, "GITHUB_RUN_NUMBER": r.RunNumber, "GITHUB_RUN_ATTEMPT": r.RunAttempt,
		"GITHUB_WORKFLOW": r.Workflow, "GITHUB_WORKFLOW_REF": r.Owner + "/" + r.Repo + "/" + r.WorkflowFile + "@" + r.Ref,
		"GITHUB_SERVER_URL": "https://github.com", "RUNNER_ENVIRONMENT": r.RunnerEnvironment,
	}
}

// serveRunnerToken mimics the runner's token service: bearer
// ACTIONS_ID_TOKEN_REQUEST_TOKEN (RequestToken or one from AddJob) required,
// audience from the query (default the owner URL), response {"value": jwt}
// with the claims of the job the bearer belongs to.
func (g *GitHub) serveRunnerToken(w http.ResponseWriter, r *http.Request) {
	run, ok := g.runOf(r.Header.Get("Authorization"))
	if !ok {
		http.Error(w, `{"message":"Unauthorized"}`, http.StatusUnauthorized)
		return
	}
	tok, err := g.MintRun(run, r.URL.Query().Get("audience"))
	if err != nil {
		http.Error(w, "mint failed", http.StatusInternalServerError)
		return
	}
	writeJSON(w, map[string]string{"value": tok})
}

// runOf returns the run of the job whose request token auth carries.
func (g *GitHub) runOf(auth string) (GitHubRun, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	bearer, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return GitHubRun{}, false
	}
	if subtle.ConstantTimeCompare([]byte(bearer), []byte(g.RequestToken)) == 1 {
		return g.run, true
	}
	for tok, run := range g.jobs {
		if subtle.ConstantTimeCompare([]byte(bearer), []byte(tok)) == 1 {
			return run, true
		}
	}
	return GitHubRun{}, false
}
