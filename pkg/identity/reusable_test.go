package identity

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/trustfabric/trustfabric/pkg/workload"
)

// TestReusableWorkflowInWIT: a job of a called reusable workflow (the
// isolated attest workflow) gets a WIT whose signed CI claims name both the
// caller's workflow (workflow_ref) and the reusable workflow at its ref
// (job_workflow_ref, job_workflow_sha): the gate's builder rule is decided on
// the latter.
func TestReusableWorkflowInWIT(t *testing.T) {
	e := newEnv(t, nil)
	const isolated = "acme/widgets/.github/workflows/attest-isolated.yml@refs/tags/v1.2.0"
	tok, err := e.gh.MintRun(oidctest.GitHubRun{JobWorkflowRef: isolated}, e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	wit, err := workload.Exchange(context.Background(), e.srv.URL, tok, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	w, err := wimse.ParseWIT(wit, wimse.Bundles{e.s.Bundle()})
	if err != nil {
		t.Fatal(err)
	}
	var ci map[string]string
	if err := json.Unmarshal(w.Claims[CIClaim], &ci); err != nil {
		t.Fatal(err)
	}
	if ci["job_workflow_ref"] != isolated {
		t.Errorf("job_workflow_ref = %q, want %q", ci["job_workflow_ref"], isolated)
	}
	if want := "acme/widgets/.github/workflows/release.yml@refs/heads/main"; ci["workflow_ref"] != want {
		t.Errorf("workflow_ref = %q, want the caller's %q", ci["workflow_ref"], want)
	}
	if ci["job_workflow_sha"] == "" {
		t.Error("job_workflow_sha is not carried")
	}
}
