package wimse

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms is the list of JWS algorithms accepted for WIT signatures and for
// cnf.jwk keys (SPIFFE WIT-SVID profile: RS, ES and PS; no EdDSA, no HMAC,
// never "none").
var Algorithms = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512,
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
}

// parseAlgorithms are the algorithms a WIT may be parsed with before its
// trust domain's bundle is known: Algorithms plus EdDSA, which a bundle may
// allow (Bundle.Algorithms). The bundle's list is then enforced.
var parseAlgorithms = append(slices.Clone(Algorithms), jose.EdDSA)

// SigningKey is a private key with the JWS algorithm it signs with and the kid
// it is published under.
type SigningKey struct {
	Signer    crypto.Signer
	Algorithm jose.SignatureAlgorithm
	KeyID     string
}

// GenerateKey creates an ES256 key whose kid is its RFC 7638 thumbprint.
func GenerateKey() (*SigningKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	sk := &SigningKey{Signer: k, Algorithm: jose.ES256}
	tp, err := sk.Thumbprint()
	if err != nil {
		return nil, err
	}
	sk.KeyID = tp
	return sk, nil
}

// PublicJWK returns the public key as a JWK carrying alg and kid.
func (k *SigningKey) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Signer.Public(), KeyID: k.KeyID, Algorithm: string(k.Algorithm)}
}

// PrivateJWK returns the private key as a JWK carrying alg and kid.
func (k *SigningKey) PrivateJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Signer, KeyID: k.KeyID, Algorithm: string(k.Algorithm)}
}

// Thumbprint returns the base64url RFC 7638 SHA-256 thumbprint of the public key.
func (k *SigningKey) Thumbprint() (string, error) {
	jwk := jose.JSONWebKey{Key: k.Signer.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("%w: thumbprint: %w", ErrMalformed, err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// KeyFromJWK turns a private JWK (with alg) into a SigningKey. A missing alg
// defaults to ES256 for P-256 keys.
func KeyFromJWK(jwk jose.JSONWebKey) (*SigningKey, error) {
	s, ok := jwk.Key.(crypto.Signer)
	if !ok || jwk.IsPublic() {
		return nil, fmt.Errorf("%w: the JWK is not a private signing key", ErrMalformed)
	}
	alg := jose.SignatureAlgorithm(jwk.Algorithm)
	if alg == "" {
		if ek, ok := s.(*ecdsa.PrivateKey); ok && ek.Curve == elliptic.P256() {
			alg = jose.ES256
		}
	}
	if err := checkKeyAlg(s.Public(), alg); err != nil {
		return nil, err
	}
	return &SigningKey{Signer: s, Algorithm: alg, KeyID: jwk.KeyID}, nil
}

// checkKeyAlg reports whether alg is allowed and fits the public key's type.
func checkKeyAlg(pub crypto.PublicKey, alg jose.SignatureAlgorithm) error {
	return checkKeyAlgIn(pub, alg, Algorithms)
}

// checkKeyAlgIn is checkKeyAlg with an explicit allow-list (a bundle's).
func checkKeyAlgIn(pub crypto.PublicKey, alg jose.SignatureAlgorithm, allowed []jose.SignatureAlgorithm) error {
	if !slices.Contains(allowed, alg) {
		if alg == jose.EdDSA {
			return fmt.Errorf("%w: EdDSA is not allowed by the WIT-SVID profile (a trust domain's bundle may allow it)", ErrUnsupportedAlgorithm)
		}
		return fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, alg)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		want := map[jose.SignatureAlgorithm]elliptic.Curve{jose.ES256: elliptic.P256(), jose.ES384: elliptic.P384(), jose.ES512: elliptic.P521()}[alg]
		if want == nil || k.Curve != want {
			return fmt.Errorf("%w: %q does not fit an EC key on %s", ErrUnsupportedAlgorithm, alg, k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if alg == jose.EdDSA || (alg[0] != 'R' && alg[0] != 'P') {
			return fmt.Errorf("%w: %q does not fit an RSA key", ErrUnsupportedAlgorithm, alg)
		}
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("%w: RSA key of %d bits is too small", ErrUnsupportedAlgorithm, k.N.BitLen())
		}
	case ed25519.PublicKey:
		if alg != jose.EdDSA {
			return fmt.Errorf("%w: %q does not fit an Ed25519 key", ErrUnsupportedAlgorithm, alg)
		}
	default:
		return fmt.Errorf("%w: key type %T", ErrUnsupportedAlgorithm, pub)
	}
	return nil
}

// newJOSESigner returns a go-jose signer for k with the given typ.
func newJOSESigner(k *SigningKey, typ string, withKID bool) (jose.Signer, error) {
	if err := checkKeyAlg(k.Signer.Public(), k.Algorithm); err != nil {
		return nil, err
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	var key any = k.Signer
	if withKID {
		key = jose.JSONWebKey{Key: k.Signer, KeyID: k.KeyID}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Algorithm, Key: key}, opts)
	if err != nil {
		return nil, fmt.Errorf("new signer: %w", err)
	}
	return s, nil
}

// KeyFromSigner wraps a signer (e.g. a scitt.PrivateKey's) as a SigningKey:
// the algorithm follows the key (ES256/ES384/ES512 by curve, PS256 for RSA)
// and the kid is the RFC 7638 thumbprint.
func KeyFromSigner(s crypto.Signer) (*SigningKey, error) {
	var alg jose.SignatureAlgorithm
	switch k := s.Public().(type) {
	case *ecdsa.PublicKey:
		alg = map[elliptic.Curve]jose.SignatureAlgorithm{elliptic.P256(): jose.ES256, elliptic.P384(): jose.ES384, elliptic.P521(): jose.ES512}[k.Curve]
	case *rsa.PublicKey:
		alg = jose.PS256
	}
	if err := checkKeyAlg(s.Public(), alg); err != nil {
		return nil, err
	}
	sk := &SigningKey{Signer: s, Algorithm: alg}
	tp, err := sk.Thumbprint()
	if err != nil {
		return nil, err
	}
	sk.KeyID = tp
	return sk, nil
}
