package wimse

import (
	"crypto"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// Algorithms is the list of JWS algorithms accepted for WIT signatures and for
// cnf.jwk keys: the SPIFFE WIT-SVID profile's RS, ES and PS families (no
// EdDSA, no HMAC, never "none"), as the algorithm table of package keys says.
var Algorithms = keys.WITAlgorithms()

// checkKeyAlg reports whether alg is allowed by the WIT-SVID profile and fits
// the public key's type.
func checkKeyAlg(pub crypto.PublicKey, alg jose.SignatureAlgorithm) error {
	a, ok := keys.AlgorithmOfJOSE(alg)
	if !ok || !a.WIT {
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
