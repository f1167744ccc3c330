// Package ci reads the context of the CI job Trustfabric runs in: which platform it is
// (GitHub Actions, GitLab CI or Tekton) and the facts that build provenance records about
// the run — source repository and commit, the workflow or pipeline that ran, the run's
// identity and start time, and the builder.
//
// Everything comes from the environment variables each platform documents:
//
//   - GitHub Actions: https://docs.github.com/en/actions/reference/variables-reference
//     (GITHUB_ACTIONS, GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_SHA, GITHUB_WORKFLOW_REF, …)
//   - GitLab CI: https://docs.gitlab.com/ci/variables/predefined_variables/
//     (GITLAB_CI, CI_SERVER_URL, CI_PROJECT_PATH, CI_COMMIT_SHA, CI_PIPELINE_ID, CI_JOB_STARTED_AT, …)
//   - Tekton sets no variables of its own; the Trustfabric Tekton tasks map Tekton's context
//     variables and the CHAINS-GIT_* type hints into the TEKTON_* variables listed on [Tekton].
//
// The OIDC token sources of each platform live in the sub-packages github, gitlab and tekton;
// this package only reads facts and never talks to the network.
package ci

import (
	"errors"
	"fmt"
	"time"
)

// Platform names a CI system.
type Platform string

// The platforms Trustfabric knows.
const (
	GitHub Platform = "github"
	GitLab Platform = "gitlab"
	Tekton Platform = "tekton"
)

// ErrNoPlatform is returned by [Detect] when the environment is not a known CI job.
var ErrNoPlatform = errors.New("no CI platform detected")

// MissingVarError reports a documented variable that the platform should have set.
type MissingVarError struct {
	Platform Platform
	Name     string
}

func (e *MissingVarError) Error() string {
	return fmt.Sprintf("%s: environment variable %s is not set", e.Platform, e.Name)
}

// Context holds the facts about a CI run that provenance needs. Fields are empty when the
// platform does not document them.
type Context struct {
	Platform Platform

	// ServerURL is the base URL of the CI/SCM server (https://github.com, https://gitlab.example).
	ServerURL string
	// Repository is the source repository path (owner/repo, group/project).
	Repository string
	// RepositoryURL is the clone URL of the source repository.
	RepositoryURL string
	// RepositoryID and OwnerID are the platform's immutable ids, when it has them.
	RepositoryID, OwnerID string
	// Commit is the full commit hash the run built.
	Commit string
	// Ref is the fully qualified git ref (refs/heads/main, refs/tags/v1), when known.
	Ref string
	// Event is what triggered the run (push, pull_request, merge_request_event, …).
	Event string

	// WorkflowPath is the path of the workflow or pipeline definition in ConfigRepository.
	WorkflowPath string
	// WorkflowRef is the ref of the workflow definition (GitHub: GITHUB_WORKFLOW_REF's ref part).
	WorkflowRef string
	// ConfigRepository is the repository holding the workflow definition (usually Repository).
	ConfigRepository string

	// RunID and RunAttempt identify this run; InvocationURL is its web address.
	RunID, RunAttempt, InvocationURL string
	// JobID identifies the job or task run within the run, when the platform has one.
	JobID string
	// StartedOn is when the run or job started, zero when the platform does not say.
	StartedOn time.Time

	// RunnerEnvironment is "github-hosted", "self-hosted", or the GitLab/Tekton runner details.
	RunnerEnvironment string
	// RunnerID identifies the runner, when known.
	RunnerID string

	// Inputs are the inputs of a manually dispatched run (GitHub workflow_dispatch inputs
	// read from the event payload at GITHUB_EVENT_PATH).
	Inputs map[string]string

	// Extra holds further documented platform variables recorded as internal parameters.
	Extra map[string]string
}

// Detect reads the CI context from getenv (os.Getenv in production, a map in tests).
// GitHub Actions is recognised by GITHUB_ACTIONS=true, GitLab CI by GITLAB_CI=true and
// Tekton by TEKTON_TASKRUN_NAME. It returns [ErrNoPlatform] outside CI and a
// [*MissingVarError] when a required variable of the detected platform is missing.
func Detect(getenv func(string) string) (*Context, error) {
	switch {
	case getenv("GITHUB_ACTIONS") == "true":
		return fromGitHub(getenv)
	case getenv("GITLAB_CI") == "true":
		return fromGitLab(getenv)
	case getenv("TEKTON_TASKRUN_NAME") != "":
		return fromTekton(getenv)
	}
	return nil, ErrNoPlatform
}

// require returns the values of names, or a MissingVarError for the first one unset.
func require(p Platform, getenv func(string) string, names ...string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	for _, n := range names {
		v := getenv(n)
		if v == "" {
			return nil, &MissingVarError{Platform: p, Name: n}
		}
		out[n] = v
	}
	return out, nil
}

// optional copies the non-empty values of names into m.
func optional(m map[string]string, getenv func(string) string, names ...string) {
	for _, n := range names {
		if v := getenv(n); v != "" {
			m[n] = v
		}
	}
}

// parseTime parses an RFC 3339 timestamp from variable name; empty gives the zero time.
func parseTime(p Platform, name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %s is not an RFC 3339 time: %w", p, name, err)
	}
	return t.UTC(), nil
}
