package scitt

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/cosewire"
)

// MaxKeyFileSize bounds every key file or key set read.
const MaxKeyFileSize = 1 << 20

// COSE_Key labels (RFC 9052 §7, RFC 9053 §7).
const (
	coseKeyKty   = 1
	coseKeyKid   = 2
	coseKeyAlg   = 3
	coseKeyCrv   = -1 // EC2/OKP: crv; RSA: n
	coseKeyX     = -2 // EC2/OKP: x;   RSA: e
	coseKeyY     = -3 // EC2: y;        RSA: d
	coseKeyD     = -4 // EC2/OKP: d
	ktyOKP       = 1
	ktyEC2       = 2
	ktyRSA       = 3
	crvP256      = 1
	crvP384      = 2
	crvP521      = 3
	crvEd25519   = 6
	maxKeysInSet = 256
)

// LoadPublicKeys reads a key file (see [ParsePublicKeys]).
func LoadPublicKeys(path string) (KeySet, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	ks, err := ParsePublicKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ks, nil
}

// LoadPrivateKey reads a private key file (see [ParsePrivateKey]).
func LoadPrivateKey(path string) (*PrivateKey, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	if len(b) > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalidKey, path, MaxKeyFileSize)
	}
	return b, nil
}

// ParsePublicKeys reads verification keys from a JWK, a JWK Set, a COSE_Key,
// a COSE_KeySet, or PEM (SPKI public keys, or private keys whose public half
// is taken). The format is detected from the content.
func ParsePublicKeys(data []byte) (KeySet, error) {
	if len(data) > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: key data larger than %d bytes", ErrInvalidKey, MaxKeyFileSize)
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return nil, fmt.Errorf("%w: empty key data", ErrInvalidKey)
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		return parsePEMPublic(trimmed)
	case trimmed[0] == '{':
		return parseJWKPublic(trimmed)
	}
	switch cosewire.Major(data) {
	case 5: // map: COSE_Key
		k, err := parseCOSEKey(data, false)
		if err != nil {
			return nil, err
		}
		return KeySet{k.pub}, nil
	case 4: // array: COSE_KeySet
		var items []cbor.RawMessage
		if err := cosewire.Dec.Unmarshal(data, &items); err != nil {
			return nil, fmt.Errorf("%w: COSE_KeySet: %w", ErrInvalidKey, err)
		}
		if len(items) == 0 || len(items) > maxKeysInSet {
			return nil, fmt.Errorf("%w: COSE_KeySet must hold 1 to %d keys, has %d", ErrInvalidKey, maxKeysInSet, len(items))
		}
		ks := make(KeySet, 0, len(items))
		for i, it := range items {
			k, err := parseCOSEKey(it, false)
			if err != nil {
				return nil, fmt.Errorf("COSE_KeySet key %d: %w", i, err)
			}
			ks = append(ks, k.pub)
		}
		return ks, nil
	}
	return nil, fmt.Errorf("%w: unrecognised key format (want JWK, JWK Set, COSE_Key, COSE_KeySet or PEM)", ErrInvalidKey)
}

// ParsePrivateKey reads a signing key from a private JWK, a COSE_Key with its
// private parameter, or PEM (PKCS#8, SEC 1 "EC PRIVATE KEY" or PKCS#1).
func ParsePrivateKey(data []byte) (*PrivateKey, error) {
	if len(data) > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: key data larger than %d bytes", ErrInvalidKey, MaxKeyFileSize)
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return nil, fmt.Errorf("%w: empty key data", ErrInvalidKey)
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		block, _ := pem.Decode(trimmed)
		if block == nil {
			return nil, fmt.Errorf("%w: bad PEM block", ErrInvalidKey)
		}
		priv, err := parsePEMPrivate(block)
		if err != nil {
			return nil, err
		}
		return NewPrivateKey(priv)
	case trimmed[0] == '{':
		var j jose.JSONWebKey
		if err := j.UnmarshalJSON(trimmed); err != nil {
			return nil, fmt.Errorf("%w: JWK: %w", ErrInvalidKey, err)
		}
		s, ok := j.Key.(crypto.Signer)
		if !ok || j.IsPublic() {
			return nil, fmt.Errorf("%w: the JWK holds no private key (is this the public key file?)", ErrInvalidKey)
		}
		k, err := NewPrivateKey(s)
		if err != nil {
			return nil, err
		}
		if j.Algorithm != "" {
			alg, err := cose.Algorithm(0), error(nil)
			if alg, err = algFromJOSE(j.Algorithm); err != nil {
				return nil, err
			}
			k.Alg = alg
		}
		if j.KeyID != "" {
			k.KID = kidFromJWK(j.KeyID, k.Public())
		}
		return k, nil
	case cosewire.Major(data) == 5:
		k, err := parseCOSEKey(data, true)
		if err != nil {
			return nil, err
		}
		return k.priv, nil
	}
	return nil, fmt.Errorf("%w: unrecognised private key format (want JWK, COSE_Key or PEM)", ErrInvalidKey)
}

func parsePEMPublic(data []byte) (KeySet, error) {
	var ks KeySet
	for len(ks) < maxKeysInSet {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		data = rest
		var pub crypto.PublicKey
		switch block.Type {
		case "PUBLIC KEY":
			p, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: PEM public key: %w", ErrInvalidKey, err)
			}
			pub = p
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: PEM certificate: %w", ErrInvalidKey, err)
			}
			pub = c.PublicKey
		default:
			priv, err := parsePEMPrivate(block)
			if err != nil {
				return nil, err
			}
			pub = priv.Public()
		}
		k, err := NewPublicKey(pub)
		if err != nil {
			return nil, err
		}
		ks = append(ks, k)
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("%w: no PEM block found", ErrInvalidKey)
	}
	return ks, nil
}

func parsePEMPrivate(block *pem.Block) (crypto.Signer, error) {
	var priv any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		priv, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: unsupported PEM block %q", ErrInvalidKey, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: PEM %s: %w", ErrInvalidKey, block.Type, err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: unsupported private key type %T", ErrInvalidKey, priv)
	}
	return s, nil
}

func parseJWKPublic(data []byte) (KeySet, error) {
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: JSON: %w", ErrInvalidKey, err)
	}
	var jwks []jose.JSONWebKey
	if probe.Keys != nil {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(data, &set); err != nil {
			return nil, fmt.Errorf("%w: JWK Set: %w", ErrInvalidKey, err)
		}
		if len(set.Keys) == 0 || len(set.Keys) > maxKeysInSet {
			return nil, fmt.Errorf("%w: JWK Set must hold 1 to %d keys, has %d", ErrInvalidKey, maxKeysInSet, len(set.Keys))
		}
		jwks = set.Keys
	} else {
		var j jose.JSONWebKey
		if err := j.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("%w: JWK: %w", ErrInvalidKey, err)
		}
		jwks = []jose.JSONWebKey{j}
	}
	ks := make(KeySet, 0, len(jwks))
	for i, j := range jwks {
		pub := j.Public()
		if pub.Key == nil {
			return nil, fmt.Errorf("%w: JWK %d is not an asymmetric key", ErrInvalidKey, i)
		}
		k, err := NewPublicKey(pub.Key)
		if err != nil {
			return nil, fmt.Errorf("JWK %d: %w", i, err)
		}
		if j.Algorithm != "" {
			if k.Alg, err = algFromJOSE(j.Algorithm); err != nil {
				return nil, fmt.Errorf("JWK %d: %w", i, err)
			}
		}
		if j.KeyID != "" {
			k.KID = kidFromJWK(j.KeyID, k)
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// kidFromJWK maps a JWK kid string back to kid bytes: a base64url-encoded
// thumbprint of the key becomes the raw thumbprint (the form COSE headers
// carry); any other kid is taken as its UTF-8 bytes.
func kidFromJWK(kid string, k *PublicKey) []byte {
	if raw, err := base64.RawURLEncoding.DecodeString(kid); err == nil {
		if bytes.Equal(raw, k.JWKThumbprint()) || bytes.Equal(raw, k.COSEThumbprint()) {
			return raw
		}
	}
	return []byte(kid)
}

func algFromJOSE(name string) (cose.Algorithm, error) {
	switch name {
	case "ES256":
		return cose.AlgorithmES256, nil
	case "ES384":
		return cose.AlgorithmES384, nil
	case "ES512":
		return cose.AlgorithmES512, nil
	case "PS256":
		return cose.AlgorithmPS256, nil
	case "EdDSA", "Ed25519":
		return cose.AlgorithmEdDSA, nil
	}
	return 0, fmt.Errorf("%w: JWK alg %q (allowed: ES256, ES384, ES512, PS256, EdDSA)", ErrUnsupportedAlgorithm, name)
}

func algToJOSE(alg cose.Algorithm) string {
	switch alg {
	case cose.AlgorithmEdDSA:
		return "EdDSA"
	}
	return alg.String()
}

type parsedCOSEKey struct {
	pub  *PublicKey
	priv *PrivateKey
}

func parseCOSEKey(data []byte, wantPrivate bool) (*parsedCOSEKey, error) {
	var m map[any]cbor.RawMessage
	if err := cosewire.Dec.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: COSE_Key: %w", ErrInvalidKey, err)
	}
	get := func(label int64) cbor.RawMessage { return m[label] }
	var kty int64
	if err := cosewire.Dec.Unmarshal(get(coseKeyKty), &kty); err != nil {
		return nil, fmt.Errorf("%w: COSE_Key kty (1) missing or not an integer", ErrInvalidKey)
	}
	bstr := func(label int64, name string) ([]byte, error) {
		raw := get(label)
		var b []byte
		if raw == nil || cosewire.Major(raw) != 2 {
			return nil, fmt.Errorf("%w: COSE_Key %s (%d) missing or not a byte string", ErrInvalidKey, name, label)
		}
		if err := cosewire.Dec.Unmarshal(raw, &b); err != nil {
			return nil, fmt.Errorf("%w: COSE_Key %s: %w", ErrInvalidKey, name, err)
		}
		return b, nil
	}
	var pub crypto.PublicKey
	var priv crypto.Signer
	switch kty {
	case ktyEC2, ktyOKP:
		var crv int64
		if err := cosewire.Dec.Unmarshal(get(coseKeyCrv), &crv); err != nil {
			return nil, fmt.Errorf("%w: COSE_Key crv (-1) missing or not an integer", ErrInvalidKey)
		}
		x, err := bstr(coseKeyX, "x")
		if err != nil {
			return nil, err
		}
		if kty == ktyOKP {
			if crv != crvEd25519 || len(x) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("%w: OKP key must be Ed25519 (crv 6) with a 32-byte x", ErrInvalidKey)
			}
			pub = ed25519.PublicKey(x)
			if wantPrivate {
				d, err := bstr(coseKeyD, "d")
				if err != nil {
					return nil, err
				}
				if len(d) != ed25519.SeedSize {
					return nil, fmt.Errorf("%w: Ed25519 d must be 32 bytes", ErrInvalidKey)
				}
				priv = ed25519.NewKeyFromSeed(d)
			}
			break
		}
		curve, size := curveFor(crv)
		if curve == nil {
			return nil, fmt.Errorf("%w: unsupported EC2 curve %d (want 1 P-256, 2 P-384, 3 P-521)", ErrInvalidKey, crv)
		}
		y, err := bstr(coseKeyY, "y")
		if err != nil {
			return nil, err
		}
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("%w: EC2 coordinates must be %d bytes", ErrInvalidKey, size)
		}
		p, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("%w: EC2 point: %w", ErrInvalidKey, err)
		}
		pub = p
		if wantPrivate {
			d, err := bstr(coseKeyD, "d")
			if err != nil {
				return nil, err
			}
			sk, err := ecdsa.ParseRawPrivateKey(curve, d)
			if err != nil {
				return nil, fmt.Errorf("%w: EC2 d: %w", ErrInvalidKey, err)
			}
			if !sk.PublicKey.Equal(p) {
				return nil, fmt.Errorf("%w: EC2 d does not match x and y", ErrInvalidKey)
			}
			priv = sk
		}
	case ktyRSA:
		n, err := bstr(coseKeyCrv, "n")
		if err != nil {
			return nil, err
		}
		e, err := bstr(coseKeyX, "e")
		if err != nil {
			return nil, err
		}
		if len(e) == 0 || len(e) > 4 {
			return nil, fmt.Errorf("%w: RSA e out of range", ErrInvalidKey)
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if wantPrivate {
			return nil, fmt.Errorf("%w: RSA private COSE keys are not supported; use PEM PKCS#8", ErrInvalidKey)
		}
	default:
		return nil, fmt.Errorf("%w: unsupported COSE_Key kty %d (want 1 OKP, 2 EC2, 3 RSA)", ErrInvalidKey, kty)
	}
	pk, err := NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if raw := get(coseKeyAlg); raw != nil {
		var alg int64
		if err := cosewire.Dec.Unmarshal(raw, &alg); err != nil {
			return nil, fmt.Errorf("%w: COSE_Key alg (3) must be an integer", ErrInvalidKey)
		}
		if err := checkAlgKey(cose.Algorithm(alg), pub); err != nil {
			return nil, err
		}
		pk.Alg = cose.Algorithm(alg)
	}
	if raw := get(coseKeyKid); raw != nil {
		switch cosewire.Major(raw) {
		case 2:
			_ = cosewire.Dec.Unmarshal(raw, &pk.KID)
		case 3: // some implementations publish text kids
			var s string
			_ = cosewire.Dec.Unmarshal(raw, &s)
			pk.KID = []byte(s)
		default:
			return nil, fmt.Errorf("%w: COSE_Key kid (2) must be a byte string", ErrInvalidKey)
		}
	}
	out := &parsedCOSEKey{pub: pk}
	if wantPrivate {
		if priv == nil {
			return nil, fmt.Errorf("%w: the COSE_Key holds no private key", ErrInvalidKey)
		}
		out.priv = &PrivateKey{Signer: priv, Alg: pk.Alg, KID: pk.KID}
		if out.priv.KID == nil {
			out.priv.KID = pk.JWKThumbprint()
		}
	}
	return out, nil
}

func curveFor(crv int64) (elliptic.Curve, int) {
	switch crv {
	case crvP256:
		return elliptic.P256(), 32
	case crvP384:
		return elliptic.P384(), 48
	case crvP521:
		return elliptic.P521(), 66
	}
	return nil, 0
}

func crvFor(c elliptic.Curve) (int64, int) {
	switch c {
	case elliptic.P256():
		return crvP256, 32
	case elliptic.P384():
		return crvP384, 48
	case elliptic.P521():
		return crvP521, 66
	}
	return 0, 0
}

// coseKeyParams returns the required public parameters of a COSE_Key.
func coseKeyParams(pub crypto.PublicKey) (map[int64]any, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		crv, size := crvFor(p.Curve)
		if crv == 0 {
			return nil, fmt.Errorf("%w: unsupported curve", ErrInvalidKey)
		}
		raw, err := p.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
		return map[int64]any{coseKeyKty: ktyEC2, coseKeyCrv: crv, coseKeyX: raw[1 : 1+size], coseKeyY: raw[1+size:]}, nil
	case ed25519.PublicKey:
		return map[int64]any{coseKeyKty: ktyOKP, coseKeyCrv: crvEd25519, coseKeyX: []byte(p)}, nil
	case *rsa.PublicKey:
		return map[int64]any{coseKeyKty: ktyRSA, coseKeyCrv: p.N.Bytes(), coseKeyX: big.NewInt(int64(p.E)).Bytes()}, nil
	}
	return nil, fmt.Errorf("%w: unsupported key type %T", ErrInvalidKey, pub)
}

// coseKeyThumbprintInput is the deterministic encoding of the required
// parameters that RFC 9679 §3 hashes.
func coseKeyThumbprintInput(pub crypto.PublicKey) ([]byte, error) {
	m, err := coseKeyParams(pub)
	if err != nil {
		return nil, err
	}
	return cosewire.Enc.Marshal(m)
}

// MarshalCOSEKey encodes the public key as a COSE_Key with its kid (the
// published kid, else the COSE key thumbprint) and alg.
func (k *PublicKey) MarshalCOSEKey() ([]byte, error) {
	m, err := k.coseKeyMap()
	if err != nil {
		return nil, err
	}
	return cosewire.Enc.Marshal(m)
}

func (k *PublicKey) coseKeyMap() (map[int64]any, error) {
	m, err := coseKeyParams(k.Key)
	if err != nil {
		return nil, err
	}
	kid := k.KID
	if kid == nil {
		kid = k.COSEThumbprint()
	}
	m[coseKeyKid] = kid
	if k.Alg != 0 {
		m[coseKeyAlg] = int64(k.Alg)
	}
	return m, nil
}

// MarshalCOSEKeySet encodes the keys as a COSE_KeySet (RFC 9052 §7).
func MarshalCOSEKeySet(ks KeySet) ([]byte, error) {
	out := make([]map[int64]any, 0, len(ks))
	for _, k := range ks {
		m, err := k.coseKeyMap()
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return cosewire.Enc.Marshal(out)
}

// MarshalJWK encodes the public key as a JWK with kid (the published kid,
// else the JWK thumbprint, base64url), alg and use "sig".
func (k *PublicKey) MarshalJWK() ([]byte, error) {
	return json.MarshalIndent(k.jwk(k.Key), "", "  ")
}

func (k *PublicKey) jwk(key any) jose.JSONWebKey {
	j := jose.JSONWebKey{Key: key, Use: "sig", Algorithm: algToJOSE(k.Alg)}
	switch {
	case k.KID == nil:
		j.KeyID = b64url(k.JWKThumbprint())
	case printable(k.KID):
		j.KeyID = string(k.KID)
	default: // binary kids (thumbprints) travel base64url-encoded
		j.KeyID = b64url(k.KID)
	}
	return j
}

// MarshalJWKSet encodes the keys as a JWK Set.
func MarshalJWKSet(ks KeySet) ([]byte, error) {
	set := jose.JSONWebKeySet{}
	for _, k := range ks {
		set.Keys = append(set.Keys, k.jwk(k.Key))
	}
	return json.MarshalIndent(set, "", "  ")
}

// MarshalJWK encodes the private key as a JWK (keep it secret: write it with
// mode 0600).
func (k *PrivateKey) MarshalJWK() ([]byte, error) {
	pub := k.Public()
	return json.MarshalIndent(pub.jwk(k.Signer), "", "  ")
}

// MarshalCOSEKey encodes the private key as a COSE_Key (EC2 and OKP only).
func (k *PrivateKey) MarshalCOSEKey() ([]byte, error) {
	pub := k.Public()
	m, err := pub.coseKeyMap()
	if err != nil {
		return nil, err
	}
	switch s := k.Signer.(type) {
	case *ecdsa.PrivateKey:
		d, err := s.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
		m[coseKeyD] = d
	case ed25519.PrivateKey:
		m[coseKeyD] = s.Seed()
	default:
		return nil, fmt.Errorf("%w: COSE_Key private encoding supports EC2 and OKP keys only", ErrInvalidKey)
	}
	return cosewire.Enc.Marshal(m)
}
