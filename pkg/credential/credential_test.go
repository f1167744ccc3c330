package credential

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/sdcwt"
	"github.com/trustfabric/trustfabric/pkg/sdjwt"
)

func allowed() *policy.Decision {
	prov := policy.Candidate{Referrer: "sha256:r1", Issuer: "spiffe://ci.example.org/github/acme/widgets", EntryID: "e1", OK: true,
		RegisteredAt: time.Unix(1_800_000_000, 0),
		Facts: &policy.Facts{ServiceIssuer: "https://ts.example", LogIndex: 7, PredicateType: "https://slsa.dev/provenance/v1",
			BuilderID: "https://github.com/acme/widgets/.github/workflows/release.yml@refs/heads/main", SourceRepository: "https://github.com/acme/widgets",
			SourceCommit: "0123", SourceRef: "refs/heads/main", Trigger: "push"}}
	tests := policy.Candidate{Referrer: "sha256:r2", EntryID: "e2", OK: true, Facts: &policy.Facts{PredicateType: "https://in-toto.io/attestation/test-result/v0.1", Result: "PASSED"}}
	return &policy.Decision{Allowed: true, Image: "reg.example/acme/widgets:v1", Digest: "sha256:abc", Policy: "ff", SatisfiedBy: &prov,
		Candidates: []policy.Candidate{tests, prov}}
}

func TestClaims(t *testing.T) {
	c, err := Claims(allowed(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	if c[ClaimArtifactDigest] != "sha256:abc" {
		t.Errorf("artifact digest %v is not plain", c[ClaimArtifactDigest])
	}
	if _, ok := c[ClaimPolicy].(map[string]any); !ok {
		t.Errorf("policy %v is not plain", c[ClaimPolicy])
	}
	for _, n := range []string{ClaimArtifactName, ClaimBuilderID, ClaimSourceRepository, ClaimSourceCommit, ClaimSourceRef, ClaimWorkload, ClaimTrigger, ClaimTransparencyService, ClaimEntryID, ClaimLogIndex, ClaimRegisteredAt} {
		if _, ok := c[n].(sdjwt.SD); !ok {
			t.Errorf("%s = %v, want selectively disclosable", n, c[n])
		}
	}
	if c[ClaimArtifactName].(sdjwt.SD).Value != "reg.example/acme/widgets" {
		t.Errorf("artifact name %v", c[ClaimArtifactName])
	}
	rs, _ := c[ClaimResults].([]any)
	if len(rs) != 1 {
		t.Fatalf("results %v", c[ClaimResults])
	}
	if r := rs[0].(sdjwt.SD).Value.(map[string]any); r["result"] != "PASSED" {
		t.Errorf("result %v", r)
	}
}

func TestIssueRefusesDeny(t *testing.T) {
	k, _ := keys.Generate(cose.AlgorithmES256)
	d := allowed()
	d.Allowed, d.Reasons = false, []string{"referrer sha256:r1: identity: not allowed"}
	if _, err := Issue(d, k, k.Public()); !errors.Is(err, ErrDenied) {
		t.Fatalf("issue on a deny: %v", err)
	}
}

// TestResultsPerElement: each extra predicate result is disclosed on its
// own, and a required value checks it.
func TestResultsPerElement(t *testing.T) {
	issuer, _ := keys.Generate(cose.AlgorithmES256)
	holder, _ := keys.Generate(cose.AlgorithmES256)
	sd, err := Issue(allowed(), issuer, holder.Public(), WithIssuer("https://issuer.example"))
	if err != nil {
		t.Fatal(err)
	}
	sel, err := sd.Select([]string{"results.0"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := sel.Present(holder, sdjwt.Presentation{Audience: "a", Nonce: "n"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(p, keys.Set{issuer.Public()}, map[string]string{"artifact_digest": "sha256:abc"})
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := v.Claims[ClaimResults].([]any)
	if len(rs) != 1 || len(v.Disclosed) != 1 {
		t.Fatalf("results %v disclosed %v", rs, v.Disclosed)
	}
	if _, err := Verify(p, keys.Set{issuer.Public()}, map[string]string{"builder_id": "x"}); !errors.Is(err, ErrRequirement) {
		t.Fatalf("required undisclosed claim: %v", err)
	}
}

// TestCWTRoundTrip: the SD-CWT form carries the same claims: results are
// disclosed one element at a time, required values are checked, and the
// CWT claim keys come back under their JWT names.
func TestCWTRoundTrip(t *testing.T) {
	issuer, _ := keys.Generate(cose.AlgorithmES256)
	holder, _ := keys.Generate(cose.AlgorithmES256)
	s, err := IssueCWT(allowed(), issuer, holder.Public(), WithIssuer("https://issuer.example"), WithPolicyName("prod"))
	if err != nil {
		t.Fatal(err)
	}
	paths, _, err := s.Paths()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{ClaimBuilderID, ClaimLogIndex, ClaimRegisteredAt, "results.0"} {
		if !slices.Contains(paths, want) {
			t.Errorf("%s is not selectively disclosable (paths %v)", want, paths)
		}
	}
	sel, err := s.Select([]string{"results.0", ClaimLogIndex})
	if err != nil {
		t.Fatal(err)
	}
	kbt, err := sel.Present(holder, sdcwt.Presentation{Audience: "a", Nonce: "n"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := VerifyCWT(kbt, keys.Set{issuer.Public()}, map[string]string{"artifact_digest": "sha256:abc", "policy.name": "prod", "log_index": "7"}, sdcwt.WithAudience("a"), sdcwt.WithNonce("n"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Issuer != "https://issuer.example" || v.Claims["vct"] != VCT {
		t.Errorf("issuer %q vct %v", v.Issuer, v.Claims["vct"])
	}
	rs, _ := v.Claims[ClaimResults].([]any)
	if len(rs) != 1 {
		t.Fatalf("results %v", v.Claims[ClaimResults])
	}
	if r, _ := rs[0].(map[string]any); r["result"] != "PASSED" {
		t.Errorf("result %v", rs[0])
	}
	if _, ok := v.Claims[ClaimBuilderID]; ok {
		t.Error("builder_id visible without being disclosed")
	}
	_, err = VerifyCWT(kbt, keys.Set{issuer.Public()}, map[string]string{"builder_id": "x"})
	var ve *sdcwt.VerifyError
	if !errors.As(err, &ve) || ve.Check != CheckRequire || !errors.Is(err, ErrRequirement) {
		t.Fatalf("required undisclosed claim: %v", err)
	}
	d := allowed()
	d.Allowed = false
	if _, err := IssueCWT(d, issuer, holder.Public()); !errors.Is(err, ErrDenied) {
		t.Fatalf("issue on a deny: %v", err)
	}
}
