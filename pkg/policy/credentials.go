package policy

import (
	"errors"
	"fmt"
	"sort"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// Credentials lets the gate allow an image on a selective-disclosure
// credential (pkg/credential: an SD-JWT VC or SD-CWT presentation) instead
// of its SCITT evidence, for consumers who must not see the provenance:
//
//	credentials:
//	  issuers:                             # pinned credential issuers (the credential's iss and keys)
//	    - issuer: https://issuer.example
//	      keys: [issuer.pub.jwk]
//	  audience: https://deploy.example     # the presentation's aud, when set
//	  require:                             # disclosed claims (dotted paths) and allowed values (globs)
//	    builder_id: ["https://github.com/acme/widgets/.github/workflows/release.yml@refs/heads/*"]
//	    source_ref: [refs/heads/main]
//
// A credential allows the image when it verifies under a pinned issuer's
// key, is about the image's digest, and discloses every required claim
// with an allowed value. A policy may hold only this section (a consumer's
// policy); then the SCITT sections may be empty and Verifier refuses it.
type Credentials struct {
	Issuers  []StaticIssuer      `yaml:"issuers"`
	Audience string              `yaml:"audience"`
	Require  map[string][]string `yaml:"require"`
}

// ErrCredentialClaims is wrapped when a credential's disclosed claims do
// not satisfy the policy's require rules.
var ErrCredentialClaims = errors.New("the credential's disclosed claims do not satisfy the policy")

// ErrCredentialOnly: the policy allows images only on credentials.
var ErrCredentialOnly = errors.New("the policy allows images only on a credential (it trusts no SCITT evidence)")

// CredentialOnly reports a policy that holds only a credentials section (a
// consumer's policy: it decides on credentials, never on SCITT evidence).
func (p *Policy) CredentialOnly() bool {
	return p.Credentials != nil && len(p.TransparencyServices) == 0 && len(p.Identities) == 0 && len(p.Issuers) == 0 && len(p.Workloads) == 0
}

func (p *Policy) validateCredentials() error {
	c := p.Credentials
	if len(c.Issuers) == 0 {
		return p.invalid("credentials: issuers is empty: pin at least one credential issuer")
	}
	for i, is := range c.Issuers {
		if is.Issuer == "" || len(is.Keys)+len(is.InlineKeys) == 0 {
			return p.invalid("credentials.issuers[%d]: give issuer and keys", i)
		}
	}
	for name, values := range c.Require {
		if name == "" || len(values) == 0 {
			return p.invalid("credentials.require: %q: give a claim name and at least one allowed value", name)
		}
		for _, g := range values {
			if err := checkGlob(g); err != nil {
				return p.invalid("credentials.require.%s: %v", name, err)
			}
		}
	}
	return nil
}

// CredentialIssuers returns the pinned keys of each credential issuer (by
// iss); nil when the policy has no credentials section.
func (p *Policy) CredentialIssuers() (map[string]keys.Set, error) {
	if p.Credentials == nil {
		return nil, nil
	}
	out := make(map[string]keys.Set, len(p.Credentials.Issuers))
	for i, is := range p.Credentials.Issuers {
		ks, err := p.loadKeys(is.Keys, is.InlineKeys)
		if err != nil {
			return nil, fmt.Errorf("credentials.issuers[%d]: %w", i, err)
		}
		out[is.Issuer] = append(out[is.Issuer], ks...)
	}
	return out, nil
}

// CheckClaims checks a verified credential's claims (the disclosed and the
// always-disclosed ones) against the require rules: each named claim must
// be disclosed, and its value (as text) must match one of the patterns.
func (c *Credentials) CheckClaims(claims map[string]any) error {
	names := make([]string, 0, len(c.Require))
	for n := range c.Require {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v, ok := ClaimAt(claims, n)
		if !ok {
			return fmt.Errorf("%w: required claim %s is not disclosed", ErrCredentialClaims, n)
		}
		if s := fmt.Sprint(v); !anyGlob(c.Require[n], s) {
			return fmt.Errorf("%w: %s is %q, allowed %q", ErrCredentialClaims, n, s, c.Require[n])
		}
	}
	return nil
}

// claimAt finds a claim by dotted path in nested objects.
func ClaimAt(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '.' {
			continue
		}
		if m, ok := claims[path[:i]].(map[string]any); ok {
			if v, ok := ClaimAt(m, path[i+1:]); ok {
				return v, true
			}
		}
	}
	return nil, false
}
