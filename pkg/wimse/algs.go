package wimse

import (
	"crypto"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// Algorithms is the list of JWS algorithms accepted for WIT signatures and for
// cnf.jwk keys: the SPIFFE WIT-SVID profile's RS, ES and PS families (no
// EdDSA, no HMAC, never "none"), as the algorithm table of package keys says.
var Algorithms = keys.WITAlgorithms()

// parseAlgorithms are the algorithms a WIT may be parsed with before its
// trust domain's bundle is known: Algorithms plus EdDSA, which a bundle may
// allow (Bundle.Algorithms). The bundle's list is then enforced.
var parseAlgorithms = append(slices.Clone(Algorithms), jose.EdDSA)

// checkKeyAlg reports whether alg is allowed by the WIT-SVID profile and fits
// the public key's type.
func checkKeyAlg(pub crypto.PublicKey, alg jose.SignatureAlgorithm) error {
	return checkKeyAlgIn(pub, alg, Algorithms)
}

// checkKeyAlgIn is checkKeyAlg with an explicit allow-list (a bundle's).
func checkKeyAlgIn(pub crypto.PublicKey, alg jose.SignatureAlgorithm, allowed []jose.SignatureAlgorithm) error {
	a, ok := keys.AlgorithmOfJOSE(alg)
	if !ok || !slices.Contains(allowed, alg) {
		if alg == jose.EdDSA {
			return fmt.Errorf("%w: EdDSA is not allowed by the WIT-SVID profile (a trust domain's bundle may allow it)", ErrUnsupportedAlgorithm)
		}
		return fmt.Errorf("%w: %q is not allowed by the WIT-SVID profile", ErrUnsupportedAlgorithm, alg)
	}
	if err := a.Fits(pub); err != nil {
		return fmt.Errorf("%w: %w", ErrUnsupportedAlgorithm, err)
	}
	return nil
}

// newJOSESigner returns a go-jose signer for k with the given typ.
func newJOSESigner(k *keys.PrivateKey, typ string, withKID bool) (jose.Signer, error) {
	s, err := k.JOSESigner(typ, withKID, Algorithms)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedAlgorithm, err)
	}
	return s, nil
}
