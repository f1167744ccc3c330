package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestBuilderDecidedOnJobWorkflow: a GitHub WIT names two workflows, the
// run's (workflow_ref, the caller) and the one whose job got the token
// (job_workflow_ref, a called reusable workflow). Only the job's workflow
// wrote and signed the provenance, so the builder rule is decided on it: an
// isolated attest workflow satisfies a policy requiring it, the caller's own
// job claiming it does not, and a called workflow cannot sign as its caller.
func TestBuilderDecidedOnJobWorkflow(t *testing.T) {
	const (
		caller   = "acme/widgets/.github/workflows/release.yml@refs/heads/main"
		isolated = "acme/widgets/.github/workflows/attest-isolated.yml@refs/heads/main"
	)
	requireBuilder := func(wf string) string {
		return strings.Replace(factsPolicy,
			`builderIDs: ["https://github.com/acme/widgets/.github/workflows/*@refs/heads/main"]`,
			`builderIDs: ["https://github.com/`+wf+`"]`, 1)
	}
	claims := func(jobWorkflow string) map[string]any {
		return map[string]any{"repository": "acme/widgets", "repository_id": "42", "ref": "refs/heads/main",
			"event_name": "push", "workflow_ref": caller, "job_workflow_ref": jobWorkflow}
	}
	w := newWorld(t)
	for _, c := range []struct {
		name        string
		policy      string
		jobWorkflow string // the WIT's job_workflow_ref
		builder     string // what the provenance claims
		allow       bool
	}{
		{"isolated workflow required, isolated workflow signed", requireBuilder(isolated), isolated, isolated, true},
		{"isolated workflow required, caller's job claims it", requireBuilder(isolated), caller, isolated, false},
		{"caller required, a called workflow signs as the caller", requireBuilder(caller), isolated, caller, false},
		{"caller required, caller's own job", requireBuilder(caller), caller, caller, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := w.with(t)
			v := w.verifier(c.policy)
			image, digest := w.pushImage("acme/isolated")
			w.attest(evidence{image: image, digest: digest, ci: claims(c.jobWorkflow), prov: func(digest string) []byte {
				var st map[string]any
				if err := json.Unmarshal(w.provenance(digest, "refs/heads/main"), &st); err != nil {
					t.Fatal(err)
				}
				st["predicate"].(map[string]any)["runDetails"] = map[string]any{"builder": map[string]any{"id": "https://github.com/" + c.builder}}
				b, _ := json.Marshal(st)
				return b
			}})
			d, err := v.Verify(w.ctx, image)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != c.allow {
				t.Fatalf("allowed=%v, want %v: %v", d.Allowed, c.allow, d.Reasons)
			}
			if !c.allow {
				ch, _ := d.Candidates[0].Failed()
				if ch.Name != CheckProvenance || !errors.Is(ch.Err(), ErrProvenance) {
					t.Errorf("failed at %s (%v), want provenance", ch.Name, ch.Err())
				}
			}
		})
	}
}
