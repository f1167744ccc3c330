package credential

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/sdcwt"
	"github.com/trustfabric/trustfabric/pkg/sdjwt"
)

// consumerPolicy is a credential-only policy pinning issuer.
func consumerPolicy(t *testing.T, issuer *keys.PrivateKey, require string) *policy.Policy {
	t.Helper()
	jwk, err := issuer.Public().MarshalJWK()
	if err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`apiVersion: trustfabric.dev/v1alpha1
kind: VerificationPolicy
credentials:
  issuers:
    - issuer: https://issuer.example
      inlineKeys: [%q]
  audience: https://deploy.example
  require:
%s
`, jwk, require)
	p, err := policy.Parse([]byte(doc), t.TempDir())
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return p
}

// TestGate: the gate allows an image on a credential whose disclosed claims
// satisfy the policy, and denies it, naming the check, when a required
// claim is not disclosed or has another value, when the credential is about
// another image, is by an unpinned issuer, or was presented to another
// audience; for both formats.
func TestGate(t *testing.T) {
	issuer, _ := keys.Generate(cose.AlgorithmES256)
	stranger, _ := keys.Generate(cose.AlgorithmES256)
	holder, _ := keys.Generate(cose.AlgorithmES256)
	rules := `    builder_id: ["https://github.com/acme/widgets/.github/workflows/release.yml@refs/heads/*"]
    source_ref: [refs/heads/main]
    policy.name: [prod]`
	p := consumerPolicy(t, issuer, rules)
	const image = "reg.example/acme/widgets@sha256:abc"

	present := func(t *testing.T, format string, key *keys.PrivateKey, aud string, disclose ...string) []byte {
		t.Helper()
		opts := []Option{WithIssuer("https://issuer.example"), WithPolicyName("prod")}
		if format == "sd-cwt" {
			s, err := IssueCWT(allowed(), key, holder.Public(), opts...)
			if err != nil {
				t.Fatal(err)
			}
			sel, err := s.Select(disclose)
			if err != nil {
				t.Fatal(err)
			}
			b, err := sel.Present(holder, sdcwt.Presentation{Audience: aud, Nonce: "n"})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		s, err := Issue(allowed(), key, holder.Public(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		sel, err := s.Select(disclose)
		if err != nil {
			t.Fatal(err)
		}
		pres, err := sel.Present(holder, sdjwt.Presentation{Audience: aud, Nonce: "n"})
		if err != nil {
			t.Fatal(err)
		}
		return []byte(pres.String())
	}
	for _, format := range []string{"sd-jwt", "sd-cwt"} {
		t.Run(format, func(t *testing.T) {
			good := present(t, format, issuer, "https://deploy.example", ClaimBuilderID, ClaimSourceRef)
			d, err := Gate(p, GateRequest{Image: image, Presentation: good, Nonce: "n"})
			if err != nil {
				t.Fatal(err)
			}
			if !d.Allowed || d.SatisfiedBy == nil || d.Digest != "sha256:abc" || len(d.Candidates[0].Checks) != 3 {
				t.Fatalf("not allowed: %+v", d)
			}
			cases := []struct {
				name, image, check, reason string
				pres                       []byte
				p                          *policy.Policy
			}{
				{"required claim not disclosed", image, GateCheckClaims, "source_ref is not disclosed", present(t, format, issuer, "https://deploy.example", ClaimBuilderID), p},
				{"required value not allowed", image, GateCheckClaims, "builder_id is", good, consumerPolicy(t, issuer, `    builder_id: ["https://github.com/other/widgets/.github/workflows/*"]`)},
				{"another image", "reg.example/acme/widgets@sha256:def", GateCheckArtifact, "sha256:abc", good, p},
				{"unpinned issuer", image, GateCheckCredential, "issuer", present(t, format, stranger, "https://deploy.example", ClaimBuilderID, ClaimSourceRef), p},
				{"another audience", image, GateCheckCredential, "audience", present(t, format, issuer, "https://elsewhere.example", ClaimBuilderID, ClaimSourceRef), p},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					d, err := Gate(tc.p, GateRequest{Image: tc.image, Presentation: tc.pres, Nonce: "n"})
					if err != nil {
						t.Fatal(err)
					}
					if d.Allowed || len(d.Reasons) != 1 {
						t.Fatalf("allowed: %+v", d)
					}
					if r := d.Reasons[0]; !strings.HasPrefix(r, "credential: "+tc.check+": ") || !strings.Contains(r, tc.reason) {
						t.Errorf("reason %q, want the %s check and %q", r, tc.check, tc.reason)
					}
				})
			}
			d, err = Gate(p, GateRequest{Image: image, Presentation: good, Nonce: "n", Now: time.Now().Add(time.Hour)})
			if err != nil || d.Allowed {
				t.Errorf("a presentation an hour old: allowed %v, %v", d.Allowed, err)
			}
		})
	}
	if _, err := Gate(p, GateRequest{Image: "reg.example/acme/widgets:v1", Presentation: []byte("x")}); err == nil {
		t.Error("an image without a digest was decided")
	}
	if _, err := policy.NewVerifier(t.Context(), p); !errors.Is(err, policy.ErrCredentialOnly) {
		t.Errorf("a credential-only policy used for SCITT evidence: %v", err)
	}
}
