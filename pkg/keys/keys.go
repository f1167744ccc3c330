package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"
)

// Sentinel errors. Key parsing wraps ErrInvalidKey; verification wraps one of
// ErrUnsupportedAlgorithm, ErrBadSignature or ErrKeyNotFound. pkg/scitt
// re-exports the last three under the same values.
var (
	// ErrInvalidKey: key bytes that are malformed, of an unsupported type or
	// curve, or too weak.
	ErrInvalidKey = errors.New("invalid key")
	// ErrUnsupportedAlgorithm: an algorithm that is not allowed where it is
	// used, or does not fit the key.
	ErrUnsupportedAlgorithm = errors.New("unsupported algorithm")
	// ErrBadSignature: the signature does not verify under any candidate key.
	ErrBadSignature = errors.New("bad signature")
	// ErrKeyNotFound: no key of the given set can verify this object.
	ErrKeyNotFound = errors.New("no matching key")
)

// PublicKey is a verification key together with the algorithm it is used with
// and the kid it was published under.
type PublicKey struct {
	// Key is an *ecdsa.PublicKey, ed25519.PublicKey or *rsa.PublicKey.
	Key crypto.PublicKey
	// Alg is the COSE algorithm the key verifies. Keys read without an
	// algorithm get their [NaturalAlgorithm].
	Alg cose.Algorithm
	// KID is the kid the key was published under (a COSE_Key kid, or a JWK
	// "kid", see the package doc); nil when it had none.
	KID []byte
	// jwkKID is the JWK "kid" string as published, when the key came from a
	// JWK whose kid decoded to a thumbprint: other implementations put its
	// UTF-8 bytes in COSE headers.
	jwkKID string

	thumbsOnce sync.Once
	jwkThumb   []byte
	coseThumb  []byte
}

// NewPublicKey wraps a crypto public key with its natural algorithm.
func NewPublicKey(pub crypto.PublicKey) (*PublicKey, error) {
	alg, err := NaturalAlgorithm(pub)
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

// Matches reports whether kid names this key (see the package doc's rule).
func (k *PublicKey) Matches(kid []byte) bool {
	if len(kid) == 0 {
		return false
	}
	if k.KID != nil && bytes.Equal(k.KID, kid) {
		return true
	}
	if k.jwkKID != "" && string(kid) == k.jwkKID {
		return true
	}
	return bytes.Equal(k.JWKThumbprint(), kid) || bytes.Equal(k.COSEThumbprint(), kid)
}

// Verify checks sig over tbs under alg. A key pinned to another algorithm
// is refused (algorithm confusion), as is an algorithm off the statement
// allow-list or not natural for the key.
func (k *PublicKey) Verify(alg cose.Algorithm, tbs, sig []byte) error {
	if k.Alg != 0 && k.Alg != alg {
		return fmt.Errorf("%w: key is for %v, object is signed with %v", ErrUnsupportedAlgorithm, k.Alg, alg)
	}
	if err := CheckStatementAlgorithm(alg, k.Key); err != nil {
		return err
	}
	if pub, ok := k.Key.(*ecdsa.PublicKey); ok && alg == cose.AlgorithmES256 {
		// The registration path's one verification: without go-cose's
		// digest object and big.Int round trip (same checks, tested
		// against go-cose in TestES256MatchesGoCOSE).
		if !verifyES256(pub, tbs, sig) {
			return fmt.Errorf("%w: %w", ErrBadSignature, cose.ErrVerification)
		}
		return nil
	}
	v, err := cose.NewVerifier(alg, k.Key)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnsupportedAlgorithm, err)
	}
	if err := v.Verify(tbs, sig); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return nil
}

// Set is an ordered set of verification keys.
type Set []*PublicKey

// Lookup returns the keys that kid names. When kid is empty or names no key,
// it returns every key, so that a verifier tries each one (package doc).
func (ks Set) Lookup(kid []byte) Set {
	var out Set
	for _, k := range ks {
		if k.Matches(kid) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return ks
	}
	return out
}

// Names reports whether kid names a key of the set. An empty kid names every
// key of a non-empty set.
func (ks Set) Names(kid []byte) bool {
	if len(kid) == 0 {
		return len(ks) > 0
	}
	for _, k := range ks {
		if k.Matches(kid) {
			return true
		}
	}
	return false
}

// Verify tries each key that kid names (every key when it names none) and
// returns the one that verified. Errors wrap ErrKeyNotFound when no key could
// even try (empty set, algorithm fits none), else ErrBadSignature.
func (ks Set) Verify(kid []byte, alg cose.Algorithm, tbs, sig []byte) (*PublicKey, error) {
	if len(ks) == 0 {
		return nil, fmt.Errorf("%w: no keys were given", ErrKeyNotFound)
	}
	var firstErr error
	tried := 0
	for _, k := range ks.Lookup(kid) {
		err := k.Verify(alg, tbs, sig)
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
		return nil, fmt.Errorf("%w: none of the %d keys can verify %v (kid %x): %w", ErrKeyNotFound, len(ks), alg, kid, firstErr)
	}
	return nil, firstErr
}

// PrivateKey is a signing key with its algorithm and kid. It signs COSE
// objects ([PrivateKey.COSESigner]) and JWS ([PrivateKey.JOSESigner]).
type PrivateKey struct {
	Signer crypto.Signer
	// Alg is the COSE algorithm the key signs with.
	Alg cose.Algorithm
	// KID is the kid put in COSE headers: by default the RFC 7638 thumbprint.
	KID []byte
}

// Generate creates a new key for alg (ES256, ES384, ES512, EdDSA or PS256
// with 3072-bit RSA). Its KID is the RFC 7638 JWK thumbprint.
func Generate(alg cose.Algorithm) (*PrivateKey, error) {
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
		return nil, fmt.Errorf("%w: cannot generate a key for %v (use %s)", ErrUnsupportedAlgorithm, alg, StatementAlgorithmNames)
	}
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	k := &PrivateKey{Signer: s, Alg: alg}
	k.KID = k.Public().JWKThumbprint()
	return k, nil
}

// NewPrivateKey wraps a crypto signer with its natural algorithm; its KID is
// the JWK thumbprint of the public key.
func NewPrivateKey(s crypto.Signer) (*PrivateKey, error) {
	alg, err := NaturalAlgorithm(s.Public())
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

// COSESigner returns the go-cose signer for this key, refusing algorithms
// off the statement allow-list.
func (k *PrivateKey) COSESigner() (cose.Signer, error) {
	if err := CheckStatementAlgorithm(k.Alg, k.Signer.Public()); err != nil {
		return nil, err
	}
	s, err := cose.NewSigner(k.Alg, k.Signer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedAlgorithm, err)
	}
	return s, nil
}

// JOSEAlgorithm returns the JWS algorithm of the key.
func (k *PrivateKey) JOSEAlgorithm() jose.SignatureAlgorithm {
	a, _ := AlgorithmOfCOSE(k.Alg)
	return a.JOSE
}

// KeyID returns the kid as a JWK "kid" string: printable kids as they are,
// binary ones (thumbprints) base64url-encoded.
func (k *PrivateKey) KeyID() string { return jwkKeyID(k.KID, k.Public()) }

// PublicJWK returns the public key as a JWK carrying alg and kid.
func (k *PrivateKey) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Signer.Public(), KeyID: k.KeyID(), Algorithm: string(k.JOSEAlgorithm())}
}

// PrivateJWK returns the private key as a JWK carrying alg and kid. Keep it
// secret.
func (k *PrivateKey) PrivateJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Signer, KeyID: k.KeyID(), Algorithm: string(k.JOSEAlgorithm())}
}

// JOSESigner returns a go-jose signer with the given typ header, and the
// kid header when withKID. allowed lists the JWS algorithms the caller's
// profile accepts (e.g. [WITAlgorithms]); the key's must be among them.
func (k *PrivateKey) JOSESigner(typ string, withKID bool, allowed []jose.SignatureAlgorithm) (jose.Signer, error) {
	a, ok := AlgorithmOfCOSE(k.Alg)
	if !ok || !containsAlg(allowed, a.JOSE) {
		return nil, fmt.Errorf("%w: %v is not allowed here", ErrUnsupportedAlgorithm, k.Alg)
	}
	if err := a.Fits(k.Signer.Public()); err != nil {
		return nil, err
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	var key any = k.Signer
	if withKID {
		key = jose.JSONWebKey{Key: k.Signer, KeyID: k.KeyID()}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: a.JOSE, Key: key}, opts)
	if err != nil {
		return nil, fmt.Errorf("new signer: %w", err)
	}
	return s, nil
}

func containsAlg(list []jose.SignatureAlgorithm, a jose.SignatureAlgorithm) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// FromJWK turns a private JWK into a PrivateKey. Its "alg" must be in the
// table and fit the key; a missing alg means the key's natural algorithm. A
// "kid" member is kept (see the package doc).
func FromJWK(j jose.JSONWebKey) (*PrivateKey, error) {
	s, ok := j.Key.(crypto.Signer)
	if !ok || j.IsPublic() {
		return nil, fmt.Errorf("%w: the JWK holds no private key (is this the public key file?)", ErrInvalidKey)
	}
	k, err := NewPrivateKey(s)
	if err != nil {
		return nil, err
	}
	if j.Algorithm != "" {
		a, err := ParseAlgorithm(j.Algorithm)
		if err != nil {
			return nil, err
		}
		if err := a.Fits(s.Public()); err != nil {
			return nil, err
		}
		k.Alg = a.COSE
	}
	if j.KeyID != "" {
		k.KID = kidFromJWK(j.KeyID, k.Public())
	}
	return k, nil
}

// kidFromJWK maps a JWK kid string to kid bytes: a base64url-encoded
// thumbprint of the key becomes the raw thumbprint (the form Trustfabric's
// COSE headers carry); any other kid is taken as its UTF-8 bytes.
func kidFromJWK(kid string, k *PublicKey) []byte {
	if raw, err := base64.RawURLEncoding.DecodeString(kid); err == nil {
		if bytes.Equal(raw, k.JWKThumbprint()) || bytes.Equal(raw, k.COSEThumbprint()) {
			return raw
		}
	}
	return []byte(kid)
}

// jwkKeyID is the inverse of kidFromJWK for writing: a nil kid becomes the
// base64url JWK thumbprint, printable kids stay, binary ones are
// base64url-encoded.
func jwkKeyID(kid []byte, k *PublicKey) string {
	switch {
	case kid == nil:
		return base64.RawURLEncoding.EncodeToString(k.JWKThumbprint())
	case printable(kid):
		return string(kid)
	default:
		return base64.RawURLEncoding.EncodeToString(kid)
	}
}

// printable reports whether b is non-empty printable ASCII, safe to use as a
// JWK kid string as it is.
func printable(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
