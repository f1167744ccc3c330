package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/oci"
)

const cyclonedx = `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"left-pad","version":"1.3.0"}]}`

// sbomPolicy requires the SLSA provenance and a CycloneDX SBOM (as the
// payload itself, or as an in-toto statement) and allows plain-text notes.
const sbomPolicy = basePolicy + `payloads:
  require:
    - name: provenance
      predicateTypes: [https://slsa.dev/provenance/v1]
    - name: sbom
      contentTypes: [application/vnd.cyclonedx+json]
      predicateTypes: [https://cyclonedx.org/bom]
  allow:
    - contentTypes: [text/plain]
`

// TestPayloadRequirements: a policy can require an SBOM next to the
// provenance, each statement with its own receipt, signature and identity;
// the provenance rules apply to the provenance only.
func TestPayloadRequirements(t *testing.T) {
	w := newWorld(t)
	both := w.verifier(sbomPolicy, WithCacheTTL(0, 0))
	old := w.verifier(basePolicy, WithCacheTTL(0, 0))
	verify := func(t *testing.T, v *Verifier, image string) *Decision {
		t.Helper()
		d, err := v.Verify(w.ctx, image)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Run("provenance only: denied, the sbom is missing", func(t *testing.T) {
		w := w.with(t)
		image, digest := w.pushImage("acme/prov-only")
		w.attest(evidence{image: image, digest: digest})
		w.attest(evidence{image: image, digest: digest, payload: []byte("built on a Tuesday\n"), contentType: "text/plain"})
		d := verify(t, both, image)
		if d.Allowed || d.Requirements[0].SatisfiedBy == "" || d.Requirements[1].SatisfiedBy != "" {
			t.Fatalf("allowed=%v requirements %+v", d.Allowed, d.Requirements)
		}
		if !strings.Contains(strings.Join(d.Reasons, "\n"), "requirement sbom") {
			t.Errorf("reasons %v", d.Reasons)
		}
		// The text note is verified and accepted (allowed), without the
		// provenance rules.
		var note *Candidate
		for i := range d.Candidates {
			if d.Candidates[i].Payload == "text/plain" {
				note = &d.Candidates[i]
			}
		}
		if note == nil || !note.OK {
			t.Fatalf("text statement: %+v", note)
		}
		// The old policy (no payload rules) is unchanged: the provenance
		// alone allows.
		if d := verify(t, old, image); !d.Allowed {
			t.Errorf("old policy: %v", d.Reasons)
		}
	})

	t.Run("provenance and cyclonedx sbom: allowed", func(t *testing.T) {
		w := w.with(t)
		image, digest := w.pushImage("acme/both")
		w.attest(evidence{image: image, digest: digest, payload: []byte(cyclonedx), contentType: "application/vnd.cyclonedx+json"})
		w.attest(evidence{image: image, digest: digest})
		d := verify(t, both, image)
		if !d.Allowed || d.Requirements[0].SatisfiedBy == "" || d.Requirements[1].SatisfiedBy == "" ||
			d.Requirements[0].SatisfiedBy == d.Requirements[1].SatisfiedBy {
			t.Fatalf("allowed=%v requirements %+v reasons %v", d.Allowed, d.Requirements, d.Reasons)
		}
		// Under the old policy, the SBOM is no provenance: rejected at
		// the payload check, and the provenance still allows.
		d = verify(t, old, image)
		if !d.Allowed {
			t.Fatalf("old policy: %v", d.Reasons)
		}
	})

	t.Run("sbom as an in-toto statement: allowed", func(t *testing.T) {
		w := w.with(t)
		image, digest := w.pushImage("acme/intoto-sbom")
		w.attest(evidence{image: image, digest: digest})
		st := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"widgets","digest":{"sha256":%q}}],"predicateType":"https://cyclonedx.org/bom","predicate":%s}`,
			strings.TrimPrefix(digest, "sha256:"), cyclonedx)
		w.attest(evidence{image: image, digest: digest, payload: []byte(st), contentType: "application/vnd.in-toto+json"})
		if d := verify(t, both, image); !d.Allowed {
			t.Fatalf("denied: %v", d.Reasons)
		}
	})

	t.Run("sbom with a bad identity does not count", func(t *testing.T) {
		w := w.with(t)
		image, digest := w.pushImage("acme/bad-sbom")
		w.attest(evidence{image: image, digest: digest})
		w.attest(evidence{image: image, digest: digest, payload: []byte(cyclonedx), contentType: "application/vnd.cyclonedx+json",
			id: "spiffe://ci.example.org/github/acme/tools/.github/workflows/x.yml/refs/heads/main"})
		d := verify(t, both, image)
		if d.Allowed {
			t.Fatal("allowed with an SBOM from a workload the policy does not allow")
		}
	})

	t.Run("sbom alone denies, under both policies", func(t *testing.T) {
		w := w.with(t)
		image, digest := w.pushImage("acme/sbom-only")
		w.attest(evidence{image: image, digest: digest, payload: []byte(cyclonedx), contentType: "application/vnd.cyclonedx+json"})
		if d := verify(t, both, image); d.Allowed {
			t.Fatal("allowed without provenance")
		}
		d := verify(t, old, image)
		if d.Allowed || len(d.Candidates) != 1 {
			t.Fatalf("old policy: allowed=%v candidates %d", d.Allowed, len(d.Candidates))
		}
		if ch, _ := d.Candidates[0].Failed(); ch.Name != CheckPayload || !errors.Is(ch.Err(), ErrPayload) {
			t.Errorf("failed at %+v, want %s", ch, CheckPayload)
		}
	})

	t.Run("json type that is not json is refused", func(t *testing.T) {
		w := w.with(t)
		image, digest := w.pushImage("acme/not-json")
		w.attest(evidence{image: image, digest: digest})
		w.attest(evidence{image: image, digest: digest, payload: []byte("bomFormat: CycloneDX"), contentType: "application/vnd.cyclonedx+json"})
		d := verify(t, both, image)
		if d.Allowed {
			t.Fatal("allowed with a CycloneDX SBOM that is not JSON")
		}
		found := false
		for _, c := range d.Candidates {
			if ch, ok := c.Failed(); ok && ch.Name == CheckPayload && errors.Is(ch.Err(), ErrPayload) {
				found = true
			}
		}
		if !found {
			t.Errorf("no candidate failed at the payload check: %+v", d.Candidates)
		}
	})
}

// TestPayloadPolicyRejects: payload rules are validated when loaded.
func TestPayloadPolicyRejects(t *testing.T) {
	for name, extra := range map[string]string{
		"empty rule":          "payloads:\n  require:\n    - name: x\n",
		"bad content type":    "payloads:\n  require:\n    - contentTypes: [cyclonedx]\n",
		"unlisted slsa":       "payloads:\n  require:\n    - predicateTypes: [https://slsa.dev/provenance/v0.2]\n",
		"required twice":      "payloads:\n  require:\n    - {name: a, contentTypes: [text/plain]}\n    - {name: a, contentTypes: [application/json]}\n",
		"unknown payload key": "payloads:\n  want: []\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(basePolicy+extra), t.TempDir()); !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("err = %v, want ErrInvalidPolicy", err)
			}
		})
	}
	p, err := Parse([]byte(basePolicy+"payloads:\n  require:\n    - contentTypes: [\"Application/SPDX+JSON; charset=utf-8\"]\n"), t.TempDir())
	if err != nil || p.Payloads.Require[0].ContentTypes[0] != "application/spdx+json" {
		t.Fatalf("normalized content type: %v %+v", err, p)
	}
}

// TestReceiptOrder: a receipt of a trusted service that does not verify
// rejects the statement whether it comes before or after one that does.
func TestReceiptOrder(t *testing.T) {
	w := newWorld(t)
	v := w.verifier(basePolicy, WithCacheTTL(0, 0))
	for _, order := range []string{"first", "last"} {
		t.Run("bad receipt "+order, func(t *testing.T) {
			w := w.with(t)
			image, digest := w.pushImage("acme/order-" + order)
			w.attest(evidence{image: image, digest: digest, badReceipt: order})
			d, err := v.Verify(w.ctx, image)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed {
				t.Fatal("allowed with a tampered receipt of the trusted service")
			}
			if ch, _ := d.Candidates[0].Failed(); ch.Name != CheckReceipts || !errors.Is(ch.Err(), ErrBadReceipt) {
				t.Errorf("failed at %+v, want %s", ch, CheckReceipts)
			}
		})
	}
}

// TestVerifyBudget: referrers sharing one blob fetch it once per
// verification, and the byte and time budgets fail the verification (an
// error, never an allow).
func TestVerifyBudget(t *testing.T) {
	w := newWorld(t)
	image, digest := w.pushImage("acme/shared")
	// Ten statements by a workload the policy does not allow, all with the
	// same 256 KiB payload: a deny evaluates every one of them.
	shared := bytes.Repeat([]byte("x"), 256<<10)
	const n = 10
	for range n {
		w.attest(evidence{image: image, digest: digest, payload: shared, contentType: "text/plain",
			id: "spiffe://ci.example.org/github/acme/tools/.github/workflows/x.yml/refs/heads/main"})
	}
	sum := sha256.Sum256(shared)
	sharedDigest := "sha256:" + hex.EncodeToString(sum[:])
	policy := basePolicy + "payloads:\n  require:\n    - contentTypes: [text/plain]\n"
	blobPath := func() string {
		for k := range w.counter.Hits() {
			if strings.HasPrefix(k, "GET ") && strings.Contains(k, "/blobs/"+sharedDigest) {
				return k
			}
		}
		return ""
	}
	before := w.counter.Hits()[blobPath()]
	d, err := w.verifier(policy, WithCacheTTL(0, 0)).Verify(w.ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || len(d.Candidates) != n {
		t.Fatalf("allowed=%v candidates %d", d.Allowed, len(d.Candidates))
	}
	if got := w.counter.Hits()[blobPath()] - before; got != 1 {
		t.Errorf("the shared blob was fetched %d times, want once", got)
	}

	_, err = w.verifier(policy, WithCacheTTL(0, 0), WithBudget(time.Minute, 128<<10)).Verify(w.ctx, image)
	if !errors.Is(err, ErrBudget) || !errors.Is(err, oci.ErrBudgetExceeded) {
		t.Errorf("byte budget: err = %v, want ErrBudget", err)
	}
	_, err = w.verifier(policy, WithCacheTTL(0, 0), WithBudget(time.Nanosecond, 0)).Verify(w.ctx, image)
	if !errors.Is(err, ErrBudget) {
		t.Errorf("time budget: err = %v, want ErrBudget", err)
	}
}

// TestReceiptKidAsJWKString is issue 11 item 1 at the gate, the verifier
// that skips receipts whose kid names no key of a trusted service: a
// receipt whose kid is the UTF-8 bytes of the service JWK's "kid" string
// (Transmute's convention: by default the base64url RFC 7638 thumbprint;
// or free text) counts; with a JWK whose kid is something else, it does not.
func TestReceiptKidAsJWKString(t *testing.T) {
	w := newWorld(t)
	thumb := base64.RawURLEncoding.EncodeToString(w.tsKey.Public().JWKThumbprint())
	jwkWithKid := func(kid string) []byte {
		b, err := w.tsKey.Public().MarshalJWK()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		m["kid"] = kid
		b, _ = json.Marshal(m)
		return b
	}
	policy := strings.Replace(basePolicy, "keys: [ts-keys.cbor]", "keys: [ts.jwk]", 1)
	for _, c := range []struct {
		name, receiptKid, jwkKid string
		allowed                  bool
	}{
		{"thumbprint string", thumb, thumb, true},
		{"free text", "log-key-2026", "log-key-2026", true},
		{"another kid", "log-key-2026", "log-key-2025", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := w.with(t)
			w.write("ts.jwk", jwkWithKid(c.jwkKid))
			signer := *w.tsKey
			signer.KID = []byte(c.receiptKid)
			image, digest := w.pushImage("acme/kid-" + strings.ReplaceAll(c.name, " ", "-"))
			w.attest(evidence{image: image, digest: digest, tsKey: &signer})
			d, err := w.verifier(policy, WithCacheTTL(0, 0)).Verify(w.ctx, image)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != c.allowed {
				ch, _ := d.Candidates[0].Failed()
				t.Fatalf("allowed = %v, want %v (failed check %+v)", d.Allowed, c.allowed, ch)
			}
			if !c.allowed {
				if ch, _ := d.Candidates[0].Failed(); ch.Name != CheckReceipts || !errors.Is(ch.Err(), ErrNoTrustedReceipt) {
					t.Errorf("failed at %+v, want %s with ErrNoTrustedReceipt", ch, CheckReceipts)
				}
			}
		})
	}
}
