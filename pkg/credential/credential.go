// Package credential turns a verified gate decision (pkg/policy) into a
// selective-disclosure credential: an SD-JWT VC (pkg/sdjwt, RFC 9901 with
// draft-ietf-oauth-sd-jwt-vc) that proves what a consumer needs about an
// image ("built by an approved builder from main, registered in a
// transparency log, tests passed") without handing over the provenance.
//
// # Claim set
//
// docs/design/credentials.md documents every claim. The artifact digest
// and the policy (name and SHA-256) are always disclosed; every other
// fact of the build is selectively disclosable; extra predicate results
// are disclosable one array element at a time. Decoys hide how many
// claims there are.
//
// # Flow
//
// [Issue] refuses a decision that is not an allow ([ErrDenied]). The
// holder selects claims with sdjwt.SDJWT.Select and binds the presentation
// to a verifier with SDJWT.Present; [Verify] checks it and the verifier's
// required claim values.
package credential

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/sdjwt"
)

// VCT is the credential type (the vct claim).
const VCT = "https://trustfabric.dev/credentials/build/v1"

// Claim names (docs/design/credentials.md).
const (
	ClaimArtifactDigest      = "artifact_digest"
	ClaimArtifactName        = "artifact_name"
	ClaimBuilderID           = "builder_id"
	ClaimSourceRepository    = "source_repository"
	ClaimSourceCommit        = "source_commit"
	ClaimSourceRef           = "source_ref"
	ClaimWorkload            = "workload"
	ClaimTrigger             = "trigger"
	ClaimTransparencyService = "transparency_service"
	ClaimEntryID             = "entry_id"
	ClaimLogIndex            = "log_index"
	ClaimRegisteredAt        = "registered_at"
	ClaimPolicy              = "policy"
	ClaimResults             = "results"
)

// Defaults of the options.
const (
	DefaultValidity = 30 * 24 * time.Hour
	DefaultDecoys   = 4
)

var (
	// ErrDenied: the gate did not allow the image, so no credential is issued.
	ErrDenied = errors.New("the policy denies the image")
	// ErrNotCredential: the SD-JWT verified but is not one of ours (vct, iss).
	ErrNotCredential = errors.New("not a Trustfabric build credential")
	// ErrRequirement: a claim the verifier requires is not disclosed or has
	// another value.
	ErrRequirement = errors.New("a required claim is not disclosed with the required value")
)

type options struct {
	issuer     string
	policyName string
	validity   time.Duration
	decoys     int
	now        func() time.Time
	rand       io.Reader
}

// Option configures Issue.
type Option func(*options) error

// WithIssuer sets the iss claim (a URI naming the issuer). Default
// "urn:trustfabric:issuer:" + the base64url JWK thumbprint of the key.
func WithIssuer(iss string) Option {
	return func(o *options) error {
		if !strings.Contains(iss, ":") {
			return fmt.Errorf("issuer %q is not a URI", iss)
		}
		o.issuer = iss
		return nil
	}
}

// WithPolicyName names the policy in the policy claim. Default "policy".
func WithPolicyName(name string) Option {
	return func(o *options) error { o.policyName = name; return nil }
}

// WithValidity sets exp - iat. Default DefaultValidity (30 days).
func WithValidity(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("validity %s: want > 0", d)
		}
		o.validity = d
		return nil
	}
}

// WithClock sets iat. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error { o.now = now; return nil }
}

// WithDecoys sets the most decoy digests per object (RFC 9901 §4.2.5).
// Default DefaultDecoys.
func WithDecoys(n int) Option {
	return func(o *options) error { o.decoys = n; return nil }
}

// Issue issues an SD-JWT VC about the image of an allowed decision, bound
// to holder (cnf). The result carries every Disclosure.
func Issue(d *policy.Decision, issuer *keys.PrivateKey, holder *keys.PublicKey, opts ...Option) (*sdjwt.SDJWT, error) {
	o := options{policyName: "policy", validity: DefaultValidity, decoys: DefaultDecoys, now: time.Now, rand: rand.Reader}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("credential: %w", err)
		}
	}
	if o.issuer == "" {
		o.issuer = DefaultIssuer(issuer)
	}
	claims, err := Claims(d, o.policyName)
	if err != nil {
		return nil, err
	}
	cnf, err := sdjwt.Confirmation(holder)
	if err != nil {
		return nil, fmt.Errorf("credential: holder key: %w", err)
	}
	now := o.now()
	claims["iss"] = o.issuer
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(o.validity).Unix()
	claims["vct"] = VCT
	claims["cnf"] = cnf
	return sdjwt.Issue(issuer, claims, sdjwt.WithType(sdjwt.TypeVC), sdjwt.WithDecoys(o.decoys), sdjwt.WithRand(o.rand))
}

// DefaultIssuer is the iss of a credential issued without WithIssuer:
// "urn:trustfabric:issuer:" + the base64url JWK thumbprint of the key.
func DefaultIssuer(key *keys.PrivateKey) string { return "urn:trustfabric:issuer:" + key.KeyID() }

// Claims returns the claim set of a credential about an allowed decision
// (without iss, iat, exp, vct and cnf), with sdjwt.SD marking the
// selectively disclosable claims.
func Claims(d *policy.Decision, policyName string) (map[string]any, error) {
	if !d.Allowed {
		return nil, fmt.Errorf("%w: %s: %s", ErrDenied, d.Image, strings.Join(d.Reasons, "; "))
	}
	prov := provenanceCandidate(d)
	if prov == nil || prov.Facts == nil {
		return nil, fmt.Errorf("%w: %s: the decision names no verified statement", ErrDenied, d.Image)
	}
	f := prov.Facts
	c := map[string]any{
		ClaimArtifactDigest: d.Digest,
		ClaimPolicy:         map[string]any{"name": policyName, "sha256": d.Policy},
	}
	sd := func(name string, v string) {
		if v != "" {
			c[name] = sdjwt.SD{Value: v}
		}
	}
	sd(ClaimArtifactName, artifactName(d.Image))
	sd(ClaimBuilderID, f.BuilderID)
	sd(ClaimSourceRepository, f.SourceRepository)
	sd(ClaimSourceCommit, f.SourceCommit)
	sd(ClaimSourceRef, f.SourceRef)
	sd(ClaimWorkload, prov.Issuer)
	sd(ClaimTrigger, f.Trigger)
	sd(ClaimTransparencyService, f.ServiceIssuer)
	sd(ClaimEntryID, prov.EntryID)
	c[ClaimLogIndex] = sdjwt.SD{Value: f.LogIndex}
	if !prov.RegisteredAt.IsZero() {
		c[ClaimRegisteredAt] = sdjwt.SD{Value: prov.RegisteredAt.Unix()}
	}
	var results []any
	for i := range d.Candidates {
		cand := &d.Candidates[i]
		if !cand.OK || cand == prov || cand.Facts == nil || cand.Facts.PredicateType == "" {
			continue
		}
		r := map[string]any{"predicate_type": cand.Facts.PredicateType, "entry_id": cand.EntryID}
		if cand.Facts.Result != "" {
			r["result"] = cand.Facts.Result
		}
		results = append(results, sdjwt.SD{Value: r})
	}
	if len(results) > 0 {
		c[ClaimResults] = results
	}
	return c, nil
}

// provenanceCandidate is the accepted candidate carrying SLSA provenance
// facts, else the one that satisfied the policy first.
func provenanceCandidate(d *policy.Decision) *policy.Candidate {
	for i := range d.Candidates {
		if c := &d.Candidates[i]; c.OK && c.Facts != nil && c.Facts.BuilderID != "" {
			return c
		}
	}
	if d.SatisfiedBy != nil {
		for i := range d.Candidates {
			if d.Candidates[i].Referrer == d.SatisfiedBy.Referrer {
				return &d.Candidates[i]
			}
		}
		return d.SatisfiedBy
	}
	return nil
}

// artifactName is the image reference without its digest or tag.
func artifactName(image string) string {
	if i := strings.LastIndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndexByte(image, ':'); i > strings.LastIndexByte(image, '/') {
		image = image[:i]
	}
	return image
}
