package attest_test

import (
	"encoding/json"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

// TestAttestInCalledWorkflow: in a job of a called reusable workflow (the
// isolated attest workflow), the runner's environment names only the
// caller's workflow; the provenance's builder is the reusable workflow at its
// ref, taken from the WIT's signed job_workflow_ref. A job of the run's own
// workflow keeps that workflow as its builder.
func TestAttestInCalledWorkflow(t *testing.T) {
	const isolated = "acme/widgets/.github/workflows/attest-isolated.yml@refs/tags/v1.0.0"
	for _, c := range []struct {
		name, jobWorkflow, builder string
	}{
		{"called workflow", isolated, "https://github.com/" + isolated},
		{"the run's own workflow", "", "https://github.com/acme/widgets/.github/workflows/release.yml@refs/heads/main"},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := oidctest.DefaultGitHubRun
			run.JobWorkflowRef = c.jobWorkflow
			env := startEnv(t, servertest.Config{Run: run})
			res, err := attest.Run(t.Context(), options(env, env.ImageTag))
			if err != nil {
				t.Fatalf("attest: %v", err)
			}
			var st struct {
				Predicate struct {
					RunDetails struct {
						Builder struct {
							ID string `json:"id"`
						} `json:"builder"`
					} `json:"runDetails"`
				} `json:"predicate"`
			}
			if err := json.Unmarshal(res.Preimage, &st); err != nil {
				t.Fatal(err)
			}
			if got := st.Predicate.RunDetails.Builder.ID; got != c.builder {
				t.Errorf("builder.id = %q, want %q", got, c.builder)
			}
		})
	}
}
