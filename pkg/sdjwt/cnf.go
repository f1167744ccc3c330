package sdjwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"fmt"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// holderKey reads the cnf.jwk of a credential (RFC 7800 §3.2). EC keys, the
// common case, are built directly (the point is checked by
// ecdsa.ParseUncompressedPublicKey); other keys go through keys.ParsePublic.
// Either way the key is wrapped by pkg/keys, whose algorithm table decides
// what it may verify.
func holderKey(jwk map[string]any) (keys.Set, error) {
	str := func(k string) string { s, _ := jwk[k].(string); return s }
	if str("kty") == "EC" && str("d") == "" {
		var curve elliptic.Curve
		switch str("crv") {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		}
		x, errX := b64.Strict().DecodeString(str("x"))
		y, errY := b64.Strict().DecodeString(str("y"))
		if curve != nil && errX == nil && errY == nil {
			size := (curve.Params().BitSize + 7) / 8
			if len(x) != size || len(y) != size {
				return nil, fmt.Errorf("cnf.jwk: coordinates of %d and %d bytes, want %d", len(x), len(y), size)
			}
			pt := append(append([]byte{4}, x...), y...)
			pub, err := ecdsa.ParseUncompressedPublicKey(curve, pt)
			if err != nil {
				return nil, fmt.Errorf("cnf.jwk: %w", err)
			}
			k, err := keys.NewPublicKey(pub)
			if err != nil {
				return nil, err
			}
			if alg := str("alg"); alg != "" {
				a, err := keys.ParseAlgorithm(alg)
				if err != nil || a.COSE != k.Alg {
					return nil, fmt.Errorf("cnf.jwk: alg %q does not fit the key", alg)
				}
			}
			return keys.Set{k}, nil
		}
	}
	b, err := json.Marshal(jwk)
	if err != nil {
		return nil, err
	}
	return keys.ParsePublic(b)
}
