package scitt

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"
)

// ErrInvalidKey is wrapped by every key parsing or conversion error.
var ErrInvalidKey = errors.New("invalid key")

// PublicKey is a verification key together with the algorithm it is used with
// and the kid it was published under.
type PublicKey struct {
	// Key is an *ecdsa.PublicKey, ed25519.PublicKey or *rsa.PublicKey.
	Key crypto.PublicKey
	// Alg is the COSE algorithm the key verifies. Keys read without an
	// algorithm get the natural one for their type: ES256/ES384/ES512 by
	// curve, EdDSA, or PS256 for RSA.
	Alg cose.Algorithm
	// KID is the kid the key was published under (a JWK "kid" as UTF-8
	// bytes, or a COSE_Key kid); nil when it had none.
	KID []byte

	thumbsOnce sync.Once
	jwkThumb   []byte
	coseThumb  []byte
}

// NewPublicKey wraps a crypto public key, inferring its algorithm.
func NewPublicKey(pub crypto.PublicKey) (*PublicKey, error) {
	alg, err := algFor(pub)
	if err != nil {
		return nil, err
	}
	return &PublicKey{Key: pub, Alg: alg}, nil
}

// JWKThumbprint returns the RFC 7638 SHA-256 thumbprint of the key: the kid
// of issuer keys (design §2.1).
func (k *PublicKey) JWKThumbprint() []byte { k.thumbs(); return k.jwkThumb }

// COSEThumbprint returns the RFC 9679 SHA-256 COSE key thumbprint of the
// key: the kid of Transparency Service keys (design §2.2).
func (k *PublicKey) COSEThumbprint() []byte { k.thumbs(); return k.coseThumb }

func (k *PublicKey) thumbs() {
	k.thumbsOnce.Do(func() {
		j := jose.JSONWebKey{Key: k.Key}
		if t, err := j.Thumbprint(crypto.SHA256); err == nil {
			k.jwkThumb = t
		}
		if enc, err := coseKeyThumbprintInput(k.Key); err == nil {
			sum := sha256.Sum256(enc)
			k.coseThumb = sum[:]
		}
	})
}

// matches reports whether kid identifies this key: the kid it was published
// under, or either of its thumbprints.
func (k *PublicKey) matches(kid []byte) bool {
	if len(kid) == 0 {
		return false
	}
	if k.KID != nil && bytes.Equal(k.KID, kid) {
		return true
	}
	return bytes.Equal(k.JWKThumbprint(), kid) || bytes.Equal(k.COSEThumbprint(), kid)
}

// PrivateKey is a signing key with its algorithm and kid.
type PrivateKey struct {
	Signer crypto.Signer
	Alg    cose.Algorithm
	KID    []byte
}

// GenerateKey creates a new key for alg (ES256, ES384, ES512, EdDSA or
// PS256). Its KID is the RFC 7638 JWK thumbprint of the public key.
func GenerateKey(alg cose.Algorithm) (*PrivateKey, error) {
	var s crypto.Signer
	var err error
	switch alg {
	case cose.AlgorithmES256:
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case cose.AlgorithmES384:
		s, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case cose.AlgorithmES512:
		s, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case cose.AlgorithmEdDSA:
		_, s, err = ed25519.GenerateKey(rand.Reader)
	case cose.AlgorithmPS256:
		s, err = rsa.GenerateKey(rand.Reader, 3072)
	default:
		return nil, fmt.Errorf("%w: cannot generate a key for %v (use ES256, ES384, ES512, EdDSA or PS256)", ErrUnsupportedAlgorithm, alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	k := &PrivateKey{Signer: s, Alg: alg}
	k.KID = k.Public().JWKThumbprint()
	return k, nil
}

// NewPrivateKey wraps a crypto signer, inferring its algorithm; its KID is
// the JWK thumbprint of the public key.
func NewPrivateKey(s crypto.Signer) (*PrivateKey, error) {
	alg, err := algFor(s.Public())
	if err != nil {
		return nil, err
	}
	k := &PrivateKey{Signer: s, Alg: alg}
	k.KID = k.Public().JWKThumbprint()
	return k, nil
}

// Public returns the public half, carrying the same algorithm and kid.
func (k *PrivateKey) Public() *PublicKey {
	return &PublicKey{Key: k.Signer.Public(), Alg: k.Alg, KID: k.KID}
}

// coseSigner returns the go-cose signer for this key.
func (k *PrivateKey) coseSigner() (cose.Signer, error) {
	if err := checkAlgKey(k.Alg, k.Signer.Public()); err != nil {
		return nil, err
	}
	s, err := cose.NewSigner(k.Alg, k.Signer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedAlgorithm, err)
	}
	return s, nil
}

// KeySet is an ordered set of verification keys.
type KeySet []*PublicKey

// Lookup returns the keys that kid identifies (by published kid, JWK
// thumbprint or COSE key thumbprint). When kid is empty or matches no key,
// it returns every key, so that a verifier can try each one.
func (ks KeySet) Lookup(kid []byte) KeySet {
	var out KeySet
	for _, k := range ks {
		if k.matches(kid) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return ks
	}
	return out
}

// allowedAlgs is the signature-algorithm allow-list of design §2.1.
var allowedAlgs = map[cose.Algorithm]bool{
	cose.AlgorithmES256: true, cose.AlgorithmES384: true, cose.AlgorithmES512: true,
	cose.AlgorithmPS256: true, cose.AlgorithmEdDSA: true,
}

// AlgorithmAllowed reports whether alg is on Trustfabric's allow-list.
func AlgorithmAllowed(alg cose.Algorithm) bool { return allowedAlgs[alg] }

// algFor infers the natural COSE algorithm of a public key.
func algFor(pub crypto.PublicKey) (cose.Algorithm, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			return cose.AlgorithmES256, nil
		case elliptic.P384():
			return cose.AlgorithmES384, nil
		case elliptic.P521():
			return cose.AlgorithmES512, nil
		}
		return 0, fmt.Errorf("%w: unsupported elliptic curve %s", ErrInvalidKey, p.Curve.Params().Name)
	case ed25519.PublicKey:
		return cose.AlgorithmEdDSA, nil
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return 0, fmt.Errorf("%w: RSA key of %d bits is too short (2048 at least)", ErrInvalidKey, p.N.BitLen())
		}
		return cose.AlgorithmPS256, nil
	}
	return 0, fmt.Errorf("%w: unsupported key type %T", ErrInvalidKey, pub)
}

// checkAlgKey reports whether alg may be used with pub.
func checkAlgKey(alg cose.Algorithm, pub crypto.PublicKey) error {
	if !allowedAlgs[alg] {
		return fmt.Errorf("%w: %v is not allowed (allowed: ES256, ES384, ES512, PS256, EdDSA)", ErrUnsupportedAlgorithm, alg)
	}
	natural, err := algFor(pub)
	if err != nil {
		return err
	}
	if natural != alg {
		return fmt.Errorf("%w: %v cannot be used with this %s key", ErrUnsupportedAlgorithm, alg, keyDesc(pub))
	}
	return nil
}

func keyDesc(pub crypto.PublicKey) string {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + p.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", p.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}

// verifySig checks sig over tbs with key under alg. Keys whose algorithm is
// pinned to something else are refused (algorithm confusion).
func verifySig(key *PublicKey, alg cose.Algorithm, tbs, sig []byte) error {
	if key.Alg != 0 && key.Alg != alg {
		return fmt.Errorf("%w: key is for %v, object is signed with %v", ErrUnsupportedAlgorithm, key.Alg, alg)
	}
	if err := checkAlgKey(alg, key.Key); err != nil {
		return err
	}
	v, err := cose.NewVerifier(alg, key.Key)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnsupportedAlgorithm, err)
	}
	if err := v.Verify(tbs, sig); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return nil
}

// verifyWithSet tries each candidate key for kid and returns the one that
// verified.
func verifyWithSet(keys KeySet, kid []byte, alg cose.Algorithm, tbs, sig []byte) (*PublicKey, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys were given", ErrKeyNotFound)
	}
	var firstErr error
	tried := 0
	for _, k := range keys.Lookup(kid) {
		err := verifySig(k, alg, tbs, sig)
		if err == nil {
			return k, nil
		}
		if errors.Is(err, ErrBadSignature) {
			tried++
		}
		if firstErr == nil || (errors.Is(err, ErrBadSignature) && !errors.Is(firstErr, ErrBadSignature)) {
			firstErr = err
		}
	}
	if tried == 0 {
		return nil, fmt.Errorf("%w: none of the %d keys can verify %v (kid %x): %w", ErrKeyNotFound, len(keys), alg, kid, firstErr)
	}
	return nil, firstErr
}

// bigBytes returns n as a big-endian byte string of exactly size bytes.
func bigBytes(n *big.Int, size int) []byte {
	b := make([]byte, size)
	return n.FillBytes(b)
}

// Names reports whether kid names a key of the set by its published kid or
// either thumbprint. An empty kid names every key of a non-empty set.
func (ks KeySet) Names(kid []byte) bool { return namesAny(kid, ks) }
