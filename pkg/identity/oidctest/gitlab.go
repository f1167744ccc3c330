package oidctest

import (
	"net/url"
	"strings"
	"time"
)

// GitLabJob describes the CI job whose id_tokens a GitLab fake mints. Zero
// fields get the defaults of DefaultGitLabJob.
type GitLabJob struct {
	NamespaceID, NamespacePath string
	ProjectID, ProjectPath     string
	// JobProjectID and JobProjectPath name the project the job runs in
	// (GitLab 18.4+). They differ from Project* in merge-request pipelines from
	// forks, where project_* names the fork.
	JobProjectID, JobProjectPath     string
	JobNamespaceID, JobNamespacePath string
	Ref, RefType                     string // "main", "branch"
	RefProtected                     string // "true" | "false"
	PipelineID, PipelineSource       string // "push", "merge_request_event", …
	JobID                            string
	SHA                              string
	UserID, UserLogin, UserEmail     string
	Environment                      string
	RunnerID                         int
	RunnerEnvironment                string // gitlab-hosted | self-hosted
	Visibility                       string
}

// DefaultGitLabJob is a push pipeline on main of acme/platform/widgets.
var DefaultGitLabJob = GitLabJob{
	NamespaceID: "72", NamespacePath: "acme/platform", ProjectID: "4242", ProjectPath: "acme/platform/widgets",
	Ref: "main", RefType: "branch", RefProtected: "true", PipelineID: "1001", PipelineSource: "push",
	JobID: "50001", SHA: "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c", UserID: "17", UserLogin: "dev",
	UserEmail: "dev@example.com", RunnerID: 12270859, RunnerEnvironment: "gitlab-hosted", Visibility: "private",
}

func (j GitLabJob) withDefaults() GitLabJob {
	d := DefaultGitLabJob
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&d.NamespaceID, j.NamespaceID)
	set(&d.NamespacePath, j.NamespacePath)
	set(&d.ProjectID, j.ProjectID)
	set(&d.ProjectPath, j.ProjectPath)
	set(&d.Ref, j.Ref)
	set(&d.RefType, j.RefType)
	set(&d.RefProtected, j.RefProtected)
	set(&d.PipelineID, j.PipelineID)
	set(&d.PipelineSource, j.PipelineSource)
	set(&d.JobID, j.JobID)
	set(&d.SHA, j.SHA)
	set(&d.UserID, j.UserID)
	set(&d.UserLogin, j.UserLogin)
	set(&d.UserEmail, j.UserEmail)
	set(&d.RunnerEnvironment, j.RunnerEnvironment)
	set(&d.Visibility, j.Visibility)
	d.Environment = j.Environment
	if j.RunnerID != 0 {
		d.RunnerID = j.RunnerID
	}
	d.JobProjectID, d.JobProjectPath = d.ProjectID, d.ProjectPath
	d.JobNamespaceID, d.JobNamespacePath = d.NamespaceID, d.NamespacePath
	set(&d.JobProjectID, j.JobProjectID)
	set(&d.JobProjectPath, j.JobProjectPath)
	set(&d.JobNamespaceID, j.JobNamespaceID)
	set(&d.JobNamespacePath, j.JobNamespacePath)
	return d
}

// GitLab fakes a GitLab instance's OIDC issuer (JWKS at /oauth/discovery/keys).
type GitLab struct{ *Issuer }

// NewGitLab starts a GitLab issuer fake.
func NewGitLab() (*GitLab, error) {
	iss, err := newIssuer("/oauth/discovery/keys")
	if err != nil {
		return nil, err
	}
	return &GitLab{iss}, nil
}

// Claims returns the claim set of a GitLab CI id_token for job with audience
// aud: exp = iat + 5 min (no job timeout), nbf = iat − 5 s; values are strings
// except runner_id.
func (g *GitLab) Claims(job GitLabJob, aud string) map[string]any {
	j := job.withDefaults()
	now := g.clock()
	refPath := "refs/heads/" + j.Ref
	if j.RefType == "tag" {
		refPath = "refs/tags/" + j.Ref
	}
	host := strings.TrimPrefix(strings.TrimPrefix(g.URL(), "https://"), "http://")
	if u, err := url.Parse(g.URL()); err == nil {
		host = u.Host
	}
	c := map[string]any{
		"namespace_id": j.NamespaceID, "namespace_path": j.NamespacePath,
		"project_id": j.ProjectID, "project_path": j.ProjectPath,
		"user_id": j.UserID, "user_login": j.UserLogin, "user_email": j.UserEmail, "user_access_level": "developer",
		"pipeline_id": j.PipelineID, "pipeline_source": j.PipelineSource, "job_id": j.JobID,
		"ref": j.Ref, "ref_type": j.RefType, "ref_path": refPath, "ref_protected": j.RefProtected,
		"runner_id": j.RunnerID, "runner_environment": j.RunnerEnvironment, "sha": j.SHA,
		"project_visibility": j.Visibility,
		"ci_config_ref_uri":  host + "/" + j.ProjectPath + "//.gitlab-ci.yml@" + refPath, "ci_config_sha": j.SHA,
		"job_project_id": j.JobProjectID, "job_project_path": j.JobProjectPath,
		"job_namespace_id": j.JobNamespaceID, "job_namespace_path": j.JobNamespacePath,
		"jti": randomID(), "iss": g.URL(), "iat": now.Unix(), "nbf": now.Add(-5 * time.Second).Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
		"sub": "project_path:" + j.ProjectPath + ":ref_type:" + j.RefType + ":ref:" + j.Ref,
		"aud": aud,
	}
	if j.Environment != "" {
		c["environment"], c["environment_protected"], c["deployment_tier"] = j.Environment, "false", "production"
	}
	return c
}

// MintJob mints an id_token for job and audience.
func (g *GitLab) MintJob(job GitLabJob, aud string) (string, error) {
	return g.Mint(g.Claims(job, aud))
}
