package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// A policy that lets every workload of the trust domain through its
// workload rules and relies on the provenance rules to narrow it down.
const factsPolicy = `apiVersion: trustfabric.dev/v1alpha1
kind: VerificationPolicy
transparencyServices:
  - issuer: https://ts.example.org
    keys: [ts-keys.cbor]
identities:
  - trustDomain: ci.example.org
    bundle: bundle.json
workloads:
  - prefix: spiffe://ci.example.org/
provenance:
  sourceRepositories: ["https://github.com/acme/widgets"]
  refs: [refs/heads/main]
  triggers: [push]
  builderIDs: ["https://github.com/acme/widgets/.github/workflows/*@refs/heads/main"]
`

// TestProvenanceDecidedOnSignedFacts: the provenance is written by the job,
// so for a WIT-bound statement the rules are decided on the CI facts the
// Identity Server signed, and a rule the WIT has no fact for denies.
func TestProvenanceDecidedOnSignedFacts(t *testing.T) {
	w := newWorld(t)
	v := w.verifier(factsPolicy)
	for _, c := range []struct {
		name  string
		id    string
		ci    map[string]any
		allow bool
	}{
		{name: "GitHub workflow matching every rule", allow: true},
		{name: "Kubernetes workload claiming GitHub provenance", id: "spiffe://ci.example.org/k8s/prod/ns/builds/sa/default",
			ci: map[string]any{"namespace": "builds", "serviceaccount": "default", "cluster": "prod"}},
		{name: "GitLab project of the same name claiming GitHub provenance", id: "spiffe://ci.example.org/gitlab/gitlab.example.net/acme/widgets/main",
			ci: map[string]any{"project_path": "acme/widgets", "project_id": "999", "ref_path": "refs/heads/main", "pipeline_source": "push",
				"runner_id": "7", "ci_config_ref_uri": "gitlab.example.net/acme/widgets//.gitlab-ci.yml@refs/heads/main"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := w.with(t)
			image, digest := w.pushImage("acme/facts")
			w.attest(evidence{image: image, digest: digest, id: c.id, ci: c.ci})
			d, err := v.Verify(w.ctx, image)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != c.allow {
				t.Fatalf("allowed=%v, want %v: %v", d.Allowed, c.allow, d.Reasons)
			}
			if c.allow {
				return
			}
			ch, _ := d.Candidates[0].Failed()
			if ch.Name != CheckProvenance || !errors.Is(ch.Err(), ErrProvenance) {
				t.Errorf("failed at %s (%v), want provenance", ch.Name, ch.Err())
			}
		})
	}
}

// TestGitLabProvenanceOnSignedFacts: a GitLab pipeline's own provenance
// passes rules written for its project, host and runner; the same pipeline
// claiming another host's project of the same path is refused.
func TestGitLabProvenanceOnSignedFacts(t *testing.T) {
	w := newWorld(t)
	policy := strings.NewReplacer(
		`sourceRepositories: ["https://github.com/acme/widgets"]`, `sourceRepositories: ["https://gitlab.example.net/acme/*"]`,
		`builderIDs: ["https://github.com/acme/widgets/.github/workflows/*@refs/heads/main"]`, `builderIDs: ["https://gitlab.example.net/acme/*/-/runners/*"]`,
	).Replace(factsPolicy)
	v := w.verifier(policy)
	ci := map[string]any{"project_path": "acme/widgets", "project_id": "999", "ref_path": "refs/heads/main", "pipeline_source": "push",
		"runner_id": "7", "ci_config_ref_uri": "gitlab.example.net/acme/widgets//.gitlab-ci.yml@refs/heads/main"}
	gitlabProv := func(host, runner string) func(string) []byte {
		return func(digest string) []byte {
			b, _ := json.Marshal(map[string]any{
				"_type":         "https://in-toto.io/Statement/v1",
				"subject":       []any{map[string]any{"name": "widgets", "digest": map[string]string{"sha256": digest[len("sha256:"):]}}},
				"predicateType": "https://slsa.dev/provenance/v1",
				"predicate": map[string]any{
					"buildDefinition": map[string]any{
						"buildType":            "https://trustfabric.dev/buildtypes/gitlab-ci/v1",
						"externalParameters":   map[string]any{"source": "push"},
						"internalParameters":   map[string]any{},
						"resolvedDependencies": []any{map[string]any{"uri": "git+https://" + host + "/acme/widgets@refs/heads/main", "digest": map[string]string{"gitCommit": "0123456789abcdef0123456789abcdef01234567"}}},
					},
					"runDetails": map[string]any{"builder": map[string]any{"id": "https://" + host + "/acme/widgets/-/runners/" + runner}},
				},
			})
			return b
		}
	}
	id := "spiffe://ci.example.org/gitlab/gitlab.example.net/acme/widgets/refs/heads/main"
	for _, c := range []struct {
		name  string
		prov  func(string) []byte
		allow bool
	}{
		{"its own provenance", gitlabProv("gitlab.example.net", "7"), true},
		{"another runner", gitlabProv("gitlab.example.net", "8"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := w.with(t)
			image, digest := w.pushImage("acme/gitlab")
			w.attest(evidence{image: image, digest: digest, id: id, ci: ci, prov: c.prov})
			d, err := v.Verify(w.ctx, image)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != c.allow {
				t.Fatalf("allowed=%v, want %v: %v", d.Allowed, c.allow, d.Reasons)
			}
		})
	}
}

// TestSelfReportedProvenance: a workload rule may opt in to judging the
// provenance rules on what the workload writes (identities without signed CI
// facts, such as a Tekton ServiceAccount); other workloads stay strict.
func TestSelfReportedProvenance(t *testing.T) {
	w := newWorld(t)
	const k8s = "spiffe://ci.example.org/k8s/prod/ns/ci/sa/release-bot"
	policy := strings.Replace(factsPolicy, "  - prefix: spiffe://ci.example.org/\n",
		"  - exact: "+k8s+"\n    selfReportedProvenance: true\n  - prefix: spiffe://ci.example.org/\n", 1)
	v := w.verifier(policy)
	ci := map[string]any{"namespace": "ci", "serviceaccount": "release-bot", "cluster": "prod"}
	for _, c := range []struct {
		id    string
		allow bool
	}{
		{k8s, true},
		{"spiffe://ci.example.org/k8s/prod/ns/ci/sa/other", false},
	} {
		t.Run(c.id, func(t *testing.T) {
			w := w.with(t)
			image, digest := w.pushImage("acme/tekton")
			w.attest(evidence{image: image, digest: digest, id: c.id, ci: ci})
			d, err := v.Verify(w.ctx, image)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != c.allow {
				t.Fatalf("allowed=%v, want %v: %v", d.Allowed, c.allow, d.Reasons)
			}
		})
	}
}
