package keys

import (
	"encoding/json"

	"github.com/go-jose/go-jose/v4"
)

// jwk returns the JWK of key (the public key or its private half) with kid,
// alg and use "sig".
func (k *PublicKey) jwk(key any) jose.JSONWebKey {
	a, _ := AlgorithmOfCOSE(k.Alg)
	kid := jwkKeyID(k.KID, k)
	if k.jwkKID != "" {
		kid = k.jwkKID
	}
	return jose.JSONWebKey{Key: key, Use: "sig", Algorithm: string(a.JOSE), KeyID: kid}
}

// MarshalJWK encodes the public key as a JWK with kid (the published kid,
// else the JWK thumbprint, base64url), alg and use "sig".
func (k *PublicKey) MarshalJWK() ([]byte, error) {
	return json.MarshalIndent(k.jwk(k.Key), "", "  ")
}

// MarshalJWKSet encodes the keys as a JWK Set.
func MarshalJWKSet(ks Set) ([]byte, error) {
	set := jose.JSONWebKeySet{}
	for _, k := range ks {
		set.Keys = append(set.Keys, k.jwk(k.Key))
	}
	return json.MarshalIndent(set, "", "  ")
}

// MarshalJWK encodes the private key as a JWK (keep it secret: write it with
// mode 0600).
func (k *PrivateKey) MarshalJWK() ([]byte, error) {
	return json.MarshalIndent(k.Public().jwk(k.Signer), "", "  ")
}
