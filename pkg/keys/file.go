package keys

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-jose/go-jose/v4"

	"github.com/trustfabric/trustfabric/internal/cosewire"
)

// MaxKeyFileSize bounds every key file or key set read.
const MaxKeyFileSize = 1 << 20

// maxKeysInSet bounds the keys of a JWK Set, COSE_KeySet or PEM bundle.
const maxKeysInSet = 256

// LoadPublic reads a key file (see [ParsePublic]).
func LoadPublic(path string) (Set, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	ks, err := ParsePublic(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ks, nil
}

// LoadPrivate reads a private key file (see [ParsePrivate]).
func LoadPrivate(path string) (*PrivateKey, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePrivate(b)
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

// ParsePublic reads verification keys from a JWK, a JWK Set, a COSE_Key,
// a COSE_KeySet, or PEM (SPKI public keys, or private keys whose public half
// is taken). The format is detected from the content.
func ParsePublic(data []byte) (Set, error) {
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
		k, err := parseCOSEKey(data)
		if err != nil {
			return nil, err
		}
		return Set{k}, nil
	case 4: // array: COSE_KeySet
		var items []cbor.RawMessage
		if err := cosewire.Dec.Unmarshal(data, &items); err != nil {
			return nil, fmt.Errorf("%w: COSE_KeySet: %w", ErrInvalidKey, err)
		}
		if len(items) == 0 || len(items) > maxKeysInSet {
			return nil, fmt.Errorf("%w: COSE_KeySet must hold 1 to %d keys, has %d", ErrInvalidKey, maxKeysInSet, len(items))
		}
		ks := make(Set, 0, len(items))
		for i, it := range items {
			k, err := parseCOSEKey(it)
			if err != nil {
				return nil, fmt.Errorf("COSE_KeySet key %d: %w", i, err)
			}
			ks = append(ks, k)
		}
		return ks, nil
	}
	return nil, fmt.Errorf("%w: unrecognised key format (want JWK, JWK Set, COSE_Key, COSE_KeySet or PEM)", ErrInvalidKey)
}

// ParsePrivate reads a signing key from a private JWK, a COSE_Key with its
// private parameter, or PEM (PKCS#8, SEC 1 "EC PRIVATE KEY" or PKCS#1).
func ParsePrivate(data []byte) (*PrivateKey, error) {
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
		return FromJWK(j)
	case cosewire.Major(data) == 5:
		return parsePrivateCOSEKey(data)
	}
	return nil, fmt.Errorf("%w: unrecognised private key format (want JWK, COSE_Key or PEM)", ErrInvalidKey)
}

func parsePEMPublic(data []byte) (Set, error) {
	var ks Set
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

func parseJWKPublic(data []byte) (Set, error) {
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
	ks := make(Set, 0, len(jwks))
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
			a, err := ParseAlgorithm(j.Algorithm)
			if err == nil {
				err = a.Fits(k.Key)
			}
			if err != nil {
				return nil, fmt.Errorf("JWK %d: %w", i, err)
			}
			k.Alg = a.COSE
		}
		if j.KeyID != "" {
			k.KID = kidFromJWK(j.KeyID, k)
			if string(k.KID) != j.KeyID {
				k.jwkKID = j.KeyID
			}
		}
		ks = append(ks, k)
	}
	return ks, nil
}
