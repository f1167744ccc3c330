package ci

import (
	"fmt"
	"net/url"
	"strings"
)

// fromGitHub reads the GitHub Actions default variables.
func fromGitHub(getenv func(string) string) (*Context, error) {
	v, err := require(GitHub, getenv, "GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA",
		"GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_WORKFLOW_REF")
	if err != nil {
		return nil, err
	}
	server := strings.TrimRight(v["GITHUB_SERVER_URL"], "/")
	repo := v["GITHUB_REPOSITORY"]
	// GITHUB_WORKFLOW_REF is "owner/repo/.github/workflows/file.yml@refs/heads/main".
	wref := v["GITHUB_WORKFLOW_REF"]
	at := strings.LastIndex(wref, "@")
	if at < 0 {
		return nil, fmt.Errorf("%s: GITHUB_WORKFLOW_REF %q has no @ref", GitHub, wref)
	}
	wpath, wrefRef := wref[:at], wref[at+1:]
	parts := strings.SplitN(wpath, "/", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("%s: GITHUB_WORKFLOW_REF %q is not owner/repo/path@ref", GitHub, wref)
	}
	c := &Context{
		Platform:          GitHub,
		ServerURL:         server,
		Repository:        repo,
		RepositoryURL:     server + "/" + repo,
		RepositoryID:      getenv("GITHUB_REPOSITORY_ID"),
		OwnerID:           getenv("GITHUB_REPOSITORY_OWNER_ID"),
		Commit:            v["GITHUB_SHA"],
		Ref:               getenv("GITHUB_REF"),
		Event:             getenv("GITHUB_EVENT_NAME"),
		WorkflowPath:      parts[2],
		WorkflowRef:       wrefRef,
		ConfigRepository:  parts[0] + "/" + parts[1],
		RunID:             v["GITHUB_RUN_ID"],
		RunAttempt:        v["GITHUB_RUN_ATTEMPT"],
		InvocationURL:     fmt.Sprintf("%s/%s/actions/runs/%s/attempts/%s", server, repo, v["GITHUB_RUN_ID"], v["GITHUB_RUN_ATTEMPT"]),
		JobID:             getenv("GITHUB_JOB"),
		RunnerEnvironment: getenv("RUNNER_ENVIRONMENT"),
		Extra:             map[string]string{},
	}
	optional(c.Extra, getenv, "GITHUB_WORKFLOW_SHA", "GITHUB_ACTOR_ID", "GITHUB_TRIGGERING_ACTOR",
		"GITHUB_BASE_REF", "GITHUB_HEAD_REF", "GITHUB_REF_PROTECTED", "RUNNER_OS", "RUNNER_ARCH")
	if p := getenv("GITHUB_EVENT_PATH"); p != "" && c.Event == "workflow_dispatch" {
		if c.Inputs, err = readEventInputs(p); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// fromGitLab reads the GitLab CI predefined variables.
func fromGitLab(getenv func(string) string) (*Context, error) {
	v, err := require(GitLab, getenv, "CI_SERVER_URL", "CI_PROJECT_PATH", "CI_COMMIT_SHA",
		"CI_PIPELINE_ID", "CI_JOB_ID")
	if err != nil {
		return nil, err
	}
	server := strings.TrimRight(v["CI_SERVER_URL"], "/")
	path := v["CI_PROJECT_PATH"]
	started, err := parseTime(GitLab, "CI_JOB_STARTED_AT", getenv("CI_JOB_STARTED_AT"))
	if err != nil {
		return nil, err
	}
	if started.IsZero() {
		if started, err = parseTime(GitLab, "CI_PIPELINE_CREATED_AT", getenv("CI_PIPELINE_CREATED_AT")); err != nil {
			return nil, err
		}
	}
	repoURL := getenv("CI_PROJECT_URL")
	if repoURL == "" {
		repoURL = server + "/" + path
	}
	jobURL := getenv("CI_JOB_URL")
	if jobURL == "" {
		jobURL = fmt.Sprintf("%s/%s/-/jobs/%s", server, path, v["CI_JOB_ID"])
	}
	configPath := getenv("CI_CONFIG_PATH")
	if configPath == "" {
		configPath = ".gitlab-ci.yml"
	}
	c := &Context{
		Platform:         GitLab,
		ServerURL:        server,
		Repository:       path,
		RepositoryURL:    repoURL,
		RepositoryID:     getenv("CI_PROJECT_ID"),
		OwnerID:          getenv("CI_PROJECT_NAMESPACE_ID"),
		Commit:           v["CI_COMMIT_SHA"],
		Ref:              gitlabRef(getenv),
		Event:            getenv("CI_PIPELINE_SOURCE"),
		WorkflowPath:     configPath,
		WorkflowRef:      gitlabRef(getenv),
		ConfigRepository: path,
		RunID:            v["CI_PIPELINE_ID"],
		RunAttempt:       "",
		InvocationURL:    jobURL,
		JobID:            v["CI_JOB_ID"],
		StartedOn:        started,
		RunnerID:         getenv("CI_RUNNER_ID"),
		Extra:            map[string]string{},
	}
	if getenv("CI_SHARED_ENVIRONMENT") == "true" {
		c.RunnerEnvironment = "shared"
	} else if c.RunnerID != "" {
		c.RunnerEnvironment = "project"
	}
	optional(c.Extra, getenv, "CI_JOB_NAME", "CI_JOB_STAGE", "CI_PIPELINE_URL", "CI_RUNNER_VERSION",
		"CI_RUNNER_DESCRIPTION", "CI_COMMIT_REF_PROTECTED", "CI_MERGE_REQUEST_IID", "CI_DEFAULT_BRANCH")
	return c, nil
}

// gitlabRef turns GitLab's tag/branch/merge-request variables into a fully qualified ref.
func gitlabRef(getenv func(string) string) string {
	switch {
	case getenv("CI_COMMIT_TAG") != "":
		return "refs/tags/" + getenv("CI_COMMIT_TAG")
	case getenv("CI_MERGE_REQUEST_REF_PATH") != "":
		return getenv("CI_MERGE_REQUEST_REF_PATH")
	case getenv("CI_COMMIT_BRANCH") != "":
		return "refs/heads/" + getenv("CI_COMMIT_BRANCH")
	case getenv("CI_COMMIT_REF_NAME") != "":
		return "refs/heads/" + getenv("CI_COMMIT_REF_NAME")
	}
	return ""
}

// Tekton variables, set by the Trustfabric Tekton tasks from Tekton's context variables
// ($(context.taskRun.name), $(context.taskRun.uid), $(context.pipelineRun.name), …) and
// from the CHAINS-GIT_URL / CHAINS-GIT_COMMIT type hints of the pipeline:
//
//	TEKTON_TASKRUN_NAME      required  $(context.taskRun.name)
//	TEKTON_TASKRUN_UID       required  $(context.taskRun.uid)
//	TEKTON_GIT_URL           required  source repository clone URL
//	TEKTON_GIT_COMMIT        required  full commit hash
//	TEKTON_GIT_REF           optional  fully qualified ref
//	TEKTON_NAMESPACE         optional  $(context.taskRun.namespace)
//	TEKTON_PIPELINERUN_NAME  optional  $(context.pipelineRun.name)
//	TEKTON_PIPELINERUN_UID   optional  $(context.pipelineRun.uid)
//	TEKTON_PIPELINE_PATH     optional  path of the Pipeline definition in the repository
//	TEKTON_RUN_URL           optional  dashboard URL of the run
//	TEKTON_STARTED_AT        optional  RFC 3339 start time
//	TEKTON_BUILDER_ID        optional  builder id URI of the cluster
const tektonDoc = "see the TEKTON_* variables documented in package ci"

// fromTekton reads the TEKTON_* variables.
func fromTekton(getenv func(string) string) (*Context, error) {
	v, err := require(Tekton, getenv, "TEKTON_TASKRUN_NAME", "TEKTON_TASKRUN_UID", "TEKTON_GIT_URL", "TEKTON_GIT_COMMIT")
	if err != nil {
		return nil, err
	}
	started, err := parseTime(Tekton, "TEKTON_STARTED_AT", getenv("TEKTON_STARTED_AT"))
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(v["TEKTON_GIT_URL"])
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%s: TEKTON_GIT_URL %q is not an absolute URL (%s)", Tekton, v["TEKTON_GIT_URL"], tektonDoc)
	}
	runID := getenv("TEKTON_PIPELINERUN_UID")
	if runID == "" {
		runID = v["TEKTON_TASKRUN_UID"]
	}
	c := &Context{
		Platform:         Tekton,
		ServerURL:        u.Scheme + "://" + u.Host,
		Repository:       strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git"),
		RepositoryURL:    strings.TrimSuffix(v["TEKTON_GIT_URL"], ".git"),
		Commit:           v["TEKTON_GIT_COMMIT"],
		Ref:              getenv("TEKTON_GIT_REF"),
		WorkflowPath:     getenv("TEKTON_PIPELINE_PATH"),
		ConfigRepository: strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git"),
		RunID:            runID,
		InvocationURL:    getenv("TEKTON_RUN_URL"),
		JobID:            v["TEKTON_TASKRUN_UID"],
		StartedOn:        started,
		Extra:            map[string]string{"TEKTON_TASKRUN_NAME": v["TEKTON_TASKRUN_NAME"]},
	}
	optional(c.Extra, getenv, "TEKTON_NAMESPACE", "TEKTON_PIPELINERUN_NAME", "TEKTON_BUILDER_ID")
	return c, nil
}
