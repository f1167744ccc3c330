package wimse

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// KeyUse is the JWK "use" of keys in a WIT bundle (SPIFFE WIT-SVID profile).
const KeyUse = "wit-svid"

// MaxBundleSize bounds the bytes ParseBundle accepts.
const MaxBundleSize = 1 << 20

// Bundle is the set of keys that sign WITs for one trust domain: a JWK Set
// whose keys carry use "wit-svid" and a unique kid. Issuers, when not empty,
// lists the WIT iss values accepted from this trust domain. Algorithms, when
// not empty, replaces [Algorithms] as the JWS algorithms accepted for this
// domain's WIT signatures and cnf.jwk keys: how an operator accepts EdDSA
// from another trust domain (the SPIFFE WIT-SVID profile's RS/ES/PS list
// stays the default); it is local configuration, never read from the JWK Set.
type Bundle struct {
	TrustDomain string
	Issuers     []string
	Keys        []jose.JSONWebKey
	Algorithms  []jose.SignatureAlgorithm
}

// algorithms returns the JWS algorithms accepted for this trust domain.
func (b *Bundle) algorithms() []jose.SignatureAlgorithm {
	if len(b.Algorithms) > 0 {
		return b.Algorithms
	}
	return Algorithms
}

// ParseAlgorithms parses JWS algorithm names for Bundle.Algorithms: those of
// [Algorithms] and EdDSA; never none or HMAC.
func ParseAlgorithms(names []string) ([]jose.SignatureAlgorithm, error) {
	var out []jose.SignatureAlgorithm
	for _, n := range names {
		a := jose.SignatureAlgorithm(strings.TrimSpace(n))
		if !slices.Contains(parseAlgorithms, a) {
			return nil, fmt.Errorf("%w: %q (allowed: %v)", ErrUnsupportedAlgorithm, a, parseAlgorithms)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// ParseBundle parses a JWK Set as the WIT bundle of trustDomain. Keys whose use
// is set to something other than "wit-svid" are skipped; private keys, keys
// without kid and duplicate kids are errors.
func ParseBundle(trustDomain string, data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%w: bundle is %d bytes, the limit is %d", ErrMalformed, len(data), MaxBundleSize)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: bundle: %w", ErrMalformed, err)
	}
	b := &Bundle{TrustDomain: strings.ToLower(trustDomain)}
	seen := map[string]bool{}
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != KeyUse {
			continue
		}
		switch {
		case k.KeyID == "":
			return nil, fmt.Errorf("%w: bundle key %d has no kid", ErrMalformed, i)
		case !k.IsPublic():
			return nil, fmt.Errorf("%w: bundle key %q is not a public key", ErrMalformed, k.KeyID)
		case seen[k.KeyID]:
			return nil, fmt.Errorf("%w: bundle kid %q is repeated", ErrMalformed, k.KeyID)
		}
		seen[k.KeyID] = true
		b.Keys = append(b.Keys, k)
	}
	if len(b.Keys) == 0 {
		return nil, fmt.Errorf("%w: bundle has no %q keys", ErrMalformed, KeyUse)
	}
	return b, nil
}

// Marshal returns the bundle as a JWK Set with use "wit-svid" on every key.
func (b *Bundle) Marshal() ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(b.Keys))}
	for i, k := range b.Keys {
		k.Use = KeyUse
		set.Keys[i] = k.Public()
		if set.Keys[i].Key == nil {
			return nil, fmt.Errorf("%w: bundle key %q cannot be made public", ErrMalformed, k.KeyID)
		}
	}
	return json.Marshal(set)
}

// Key returns the key with the given kid.
func (b *Bundle) Key(kid string) (*jose.JSONWebKey, bool) {
	for i := range b.Keys {
		if b.Keys[i].KeyID == kid {
			return &b.Keys[i], true
		}
	}
	return nil, false
}

// BundleSource returns the WIT bundle of a trust domain. Implementations
// return an error wrapping [ErrUntrustedDomain] when there is none.
type BundleSource interface {
	Bundle(trustDomain string) (*Bundle, error)
}

// Bundles is a BundleSource over a fixed set of bundles.
type Bundles []*Bundle

// Bundle implements BundleSource.
func (bs Bundles) Bundle(trustDomain string) (*Bundle, error) {
	for _, b := range bs {
		if strings.EqualFold(b.TrustDomain, trustDomain) {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUntrustedDomain, trustDomain)
}
