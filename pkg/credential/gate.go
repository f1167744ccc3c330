package credential

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/sdcwt"
	"github.com/trustfabric/trustfabric/pkg/sdjwt"
)

// Checks of a gate decision on a credential, in order.
const (
	GateCheckCredential = "credential"
	GateCheckArtifact   = "artifact"
	GateCheckClaims     = "claims"
)

// ErrNoCredentialRules: the policy has no credentials section.
var ErrNoCredentialRules = errors.New("the policy has no credentials section: it allows no image on a credential")

// GateRequest is a presentation offered to the gate for one image.
type GateRequest struct {
	// Image is the image reference with its digest (name@sha256:…).
	Image string
	// Presentation is an SD-JWT VC presentation (text) or an SD-CWT one
	// (an SD-KBT, binary CBOR).
	Presentation []byte
	// Nonce, when set, must be the presentation's nonce. The audience is
	// the policy's credentials.audience.
	Nonce string
	// Now is the time of the checks; zero means time.Now.
	Now time.Time
}

// Gate decides on an image by a credential (issue 15 item 5): allow when
// the presentation verifies under a credential issuer the policy pins (with
// its key binding, and the policy's audience when set), is about the
// image's digest, and discloses every claim the policy requires with an
// allowed value. The decision lists one candidate, "credential", with each
// check; a deny carries the reason. An error means the request could not be
// decided (a policy without credential rules, an image without a digest,
// unreadable issuer keys).
func Gate(p *policy.Policy, req GateRequest) (*policy.Decision, error) {
	if p.Credentials == nil {
		return nil, ErrNoCredentialRules
	}
	at := strings.LastIndexByte(req.Image, '@')
	if at < 0 || !strings.HasPrefix(req.Image[at+1:], "sha256:") {
		return nil, fmt.Errorf("image %q: give it by digest (name@sha256:…) to decide on a credential", req.Image)
	}
	issuers, err := p.CredentialIssuers()
	if err != nil {
		return nil, err
	}
	h := p.Hash()
	d := &policy.Decision{Image: req.Image, Digest: req.Image[at+1:], Policy: hex.EncodeToString(h[:]),
		Requirements: []policy.Requirement{{Name: "credential"}}}
	c := policy.Candidate{Referrer: "credential"}
	deny := func(check string, err error) (*policy.Decision, error) {
		c.Checks = append(c.Checks, policy.Check{Name: check, Reason: err.Error()})
		d.Candidates = []policy.Candidate{c}
		d.Reasons = []string{fmt.Sprintf("credential: %s: %v", check, err)}
		return d, nil
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	isCWT := len(req.Presentation) > 0 && req.Presentation[0] == 0xd2
	c.Payload = ContentTypeSDJWT
	if isCWT {
		c.Payload = ContentTypeSDCWT
	}
	// Try each pinned issuer's keys; the credential's iss must be that
	// issuer's name.
	var v *Verified
	var firstErr error
	for iss, ks := range issuers {
		got, err := verifyPresentation(req, isCWT, ks, now, p.Credentials.Audience)
		if err == nil && got.Issuer != iss {
			err = fmt.Errorf("%w: iss %q is not the pinned issuer %q of that key", ErrNotCredential, got.Issuer, iss)
		}
		if err == nil {
			v = got
			break
		}
		if firstErr == nil || !isSignatureError(err) {
			firstErr = err
		}
	}
	if v == nil {
		return deny(GateCheckCredential, firstErr)
	}
	c.Issuer = v.Issuer
	c.Checks = append(c.Checks, policy.Check{Name: GateCheckCredential, OK: true, Reason: fmt.Sprintf("verified %s credential from %s, presented to %s", c.Payload, v.Issuer, v.Audience)})
	if got, _ := v.Claims[ClaimArtifactDigest].(string); got != d.Digest {
		return deny(GateCheckArtifact, fmt.Errorf("the credential is about %q, not %s", got, d.Digest))
	}
	c.Checks = append(c.Checks, policy.Check{Name: GateCheckArtifact, OK: true, Reason: d.Digest})
	if err := p.Credentials.CheckClaims(v.Claims); err != nil {
		return deny(GateCheckClaims, err)
	}
	c.Checks = append(c.Checks, policy.Check{Name: GateCheckClaims, OK: true, Reason: "disclosed: " + strings.Join(v.Disclosed, ", ")})
	c.OK = true
	d.Allowed = true
	d.Candidates = []policy.Candidate{c}
	d.SatisfiedBy = &d.Candidates[0]
	d.Requirements[0].SatisfiedBy = c.Referrer
	return d, nil
}

func verifyPresentation(req GateRequest, isCWT bool, ks keys.Set, now time.Time, aud string) (*Verified, error) {
	clock := func() time.Time { return now }
	if isCWT {
		opts := []sdcwt.VerifyOption{sdcwt.WithClock(clock)}
		if aud != "" {
			opts = append(opts, sdcwt.WithAudience(aud))
		}
		if req.Nonce != "" {
			opts = append(opts, sdcwt.WithNonce(req.Nonce))
		}
		return VerifyCWT(req.Presentation, ks, nil, opts...)
	}
	s := strings.TrimSpace(string(req.Presentation))
	var sd *sdjwt.SDJWT
	var err error
	if strings.HasPrefix(s, "{") {
		sd, err = sdjwt.ParseJSON([]byte(s))
	} else {
		sd, err = sdjwt.Parse(s)
	}
	if err != nil {
		return nil, &sdjwt.VerifyError{Check: sdjwt.CheckFormat, Err: err}
	}
	opts := []sdjwt.VerifyOption{sdjwt.WithClock(clock)}
	if aud != "" {
		opts = append(opts, sdjwt.WithAudience(aud))
	}
	if req.Nonce != "" {
		opts = append(opts, sdjwt.WithNonce(req.Nonce))
	}
	return Verify(sd, ks, nil, opts...)
}

// isSignatureError reports a failure at the issuer signature (another
// issuer's key): a later issuer's more specific failure is kept instead.
func isSignatureError(err error) bool {
	var je *sdjwt.VerifyError
	var ce *sdcwt.VerifyError
	return (errors.As(err, &je) && je.Check == sdjwt.CheckSignature) || (errors.As(err, &ce) && ce.Check == sdcwt.CheckSignature)
}
