package sdjwt

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// ErrNoSuchClaim: a claim asked to be disclosed is not in the credential.
var ErrNoSuchClaim = errors.New("no such claim in the credential")

// Paths returns the claim path of each Disclosure of s, in order, by
// processing the (unverified) payload: the holder's view of its own
// credential.
func (s *SDJWT) Paths() ([]string, map[string]any, error) {
	j, _, err := splitJWT(s.IssuerJWT)
	if err != nil {
		return nil, nil, err
	}
	var payload map[string]any
	if err := decodeJSON(j.payload, &payload); err != nil || payload == nil {
		return nil, nil, fmt.Errorf("%w: payload is not a JSON object", ErrMalformed)
	}
	claims, paths, err := resolve(payload, s.Disclosures)
	return paths, claims, err
}

// Select returns the SD-JWT with only the Disclosures needed to disclose
// the named claim paths: a Disclosure is kept when its path is a named path,
// lies under one (disclosing "address" discloses its parts), or lies above
// one (a nested claim needs its parent). A name that is neither disclosable
// nor a plain claim is an error wrapping ErrNoSuchClaim.
func (s *SDJWT) Select(names []string) (*SDJWT, error) {
	paths, claims, err := s.Paths()
	if err != nil {
		return nil, err
	}
	out := &SDJWT{IssuerJWT: s.IssuerJWT}
	matched := make(map[string]bool, len(names))
	for i, p := range paths {
		for _, n := range names {
			if p == n || strings.HasPrefix(p, n+".") || strings.HasPrefix(n, p+".") {
				out.Disclosures = append(out.Disclosures, s.Disclosures[i])
				matched[n] = true
				break
			}
		}
	}
	for _, n := range names {
		if !matched[n] {
			if _, plain := claims[n]; !plain {
				return nil, fmt.Errorf("%w: %q", ErrNoSuchClaim, n)
			}
		}
	}
	return out, nil
}

// Presentation is what a Key Binding JWT binds a presentation to.
type Presentation struct {
	// Audience (aud) is the verifier; Nonce its fresh value. Both required.
	Audience, Nonce string
	// IssuedAt is the KB-JWT's iat. Default time.Now.
	IssuedAt time.Time
}

// Present returns s with a Key Binding JWT (§4.3) signed by holder: typ
// kb+jwt, iat, aud, nonce and sd_hash over s's SD-JWT part. Select the
// Disclosures first.
func (s *SDJWT) Present(holder *keys.PrivateKey, p Presentation) (*SDJWT, error) {
	if p.Audience == "" || p.Nonce == "" {
		return nil, errors.New("present: an audience and a nonce are required")
	}
	if p.IssuedAt.IsZero() {
		p.IssuedAt = time.Now()
	}
	signer, err := holder.JOSESigner(TypeKB, false, Algorithms)
	if err != nil {
		return nil, fmt.Errorf("present: %w", err)
	}
	out := &SDJWT{IssuerJWT: s.IssuerJWT, Disclosures: s.Disclosures}
	body, err := marshal(map[string]any{"iat": p.IssuedAt.Unix(), "aud": p.Audience, "nonce": p.Nonce, "sd_hash": out.SDHash()})
	if err != nil {
		return nil, err
	}
	jws, err := signer.Sign(body)
	if err != nil {
		return nil, fmt.Errorf("present: sign: %w", err)
	}
	if out.KeyBinding, err = jws.CompactSerialize(); err != nil {
		return nil, fmt.Errorf("present: %w", err)
	}
	return out, nil
}
