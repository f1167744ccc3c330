package ci

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want *Context
	}{{
		name: "github",
		env: map[string]string{
			"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com/", "GITHUB_REPOSITORY": "acme/widgets",
			"GITHUB_SHA": "8f2b1c3d4e5f60718293a4b5c6d7e8f901234567", "GITHUB_RUN_ID": "77", "GITHUB_RUN_ATTEMPT": "1",
			"GITHUB_WORKFLOW_REF": "acme/shared/.github/workflows/release.yml@refs/tags/v1",
			"GITHUB_REF":          "refs/heads/main", "RUNNER_ENVIRONMENT": "self-hosted",
		},
		want: &Context{
			Platform: GitHub, ServerURL: "https://github.com", Repository: "acme/widgets",
			RepositoryURL: "https://github.com/acme/widgets", Commit: "8f2b1c3d4e5f60718293a4b5c6d7e8f901234567",
			Ref: "refs/heads/main", WorkflowPath: ".github/workflows/release.yml", WorkflowRef: "refs/tags/v1",
			ConfigRepository: "acme/shared", RunID: "77", RunAttempt: "1",
			InvocationURL:     "https://github.com/acme/widgets/actions/runs/77/attempts/1",
			RunnerEnvironment: "self-hosted",
		},
	}, {
		name: "gitlab tag pipeline",
		env: map[string]string{
			"GITLAB_CI": "true", "CI_SERVER_URL": "https://gitlab.example", "CI_PROJECT_PATH": "g/p",
			"CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567", "CI_PIPELINE_ID": "5", "CI_JOB_ID": "9",
			"CI_COMMIT_TAG": "v1.2.3", "CI_COMMIT_REF_NAME": "v1.2.3", "CI_JOB_STARTED_AT": "2026-03-01T10:00:05+01:00",
		},
		want: &Context{
			Platform: GitLab, ServerURL: "https://gitlab.example", Repository: "g/p",
			RepositoryURL: "https://gitlab.example/g/p", Commit: "0123456789abcdef0123456789abcdef01234567",
			Ref: "refs/tags/v1.2.3", WorkflowPath: ".gitlab-ci.yml", WorkflowRef: "refs/tags/v1.2.3",
			ConfigRepository: "g/p", RunID: "5", JobID: "9", InvocationURL: "https://gitlab.example/g/p/-/jobs/9",
			StartedOn: time.Date(2026, 3, 1, 9, 0, 5, 0, time.UTC),
		},
	}, {
		name: "tekton",
		env: map[string]string{
			"TEKTON_TASKRUN_NAME": "tr", "TEKTON_TASKRUN_UID": "uid-1", "TEKTON_GIT_URL": "https://git.example/a/b.git",
			"TEKTON_GIT_COMMIT": "fedcba9876543210fedcba9876543210fedcba98",
		},
		want: &Context{
			Platform: Tekton, ServerURL: "https://git.example", Repository: "a/b", RepositoryURL: "https://git.example/a/b",
			Commit: "fedcba9876543210fedcba9876543210fedcba98", ConfigRepository: "a/b", RunID: "uid-1", JobID: "uid-1",
			Extra: map[string]string{"TEKTON_TASKRUN_NAME": "tr"},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Detect(env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("Detect() mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestDetectErrors(t *testing.T) {
	if _, err := Detect(env(nil)); !errors.Is(err, ErrNoPlatform) {
		t.Errorf("empty env: err = %v, want ErrNoPlatform", err)
	}
	_, err := Detect(env(map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com"}))
	var mv *MissingVarError
	if !errors.As(err, &mv) || mv.Name != "GITHUB_REPOSITORY" {
		t.Errorf("missing var: err = %v, want MissingVarError for GITHUB_REPOSITORY", err)
	}
	_, err = Detect(env(map[string]string{"GITLAB_CI": "true", "CI_SERVER_URL": "u", "CI_PROJECT_PATH": "p",
		"CI_COMMIT_SHA": "s", "CI_PIPELINE_ID": "1", "CI_JOB_ID": "2", "CI_JOB_STARTED_AT": "yesterday"}))
	if err == nil {
		t.Error("bad CI_JOB_STARTED_AT accepted")
	}
	_, err = Detect(env(map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "u", "GITHUB_REPOSITORY": "r",
		"GITHUB_SHA": "s", "GITHUB_RUN_ID": "1", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_WORKFLOW_REF": "no-at-sign"}))
	if err == nil {
		t.Error("GITHUB_WORKFLOW_REF without @ accepted")
	}
}

func TestGitHubDispatchInputs(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/event.json"
	if err := os.WriteFile(p, []byte(`{"inputs":{"channel":"stable","dry":true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "a/b",
		"GITHUB_SHA": "s", "GITHUB_RUN_ID": "1", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_WORKFLOW_REF": "a/b/w.yml@refs/heads/main",
		"GITHUB_EVENT_NAME": "workflow_dispatch", "GITHUB_EVENT_PATH": p}
	c, err := Detect(env(e))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]string{"channel": "stable", "dry": "true"}, c.Inputs); d != "" {
		t.Errorf("inputs (-want +got):\n%s", d)
	}
	if err := os.WriteFile(p, []byte(`{"inputs":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Detect(env(e)); err == nil {
		t.Error("truncated event payload accepted")
	}
}
