package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"math/big"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/cosewire"
)

// COSE_Key labels (RFC 9052 §7, RFC 9053 §7, RFC 8230 §4).
const (
	coseKeyKty = 1
	coseKeyKid = 2
	coseKeyAlg = 3
	coseKeyCrv = -1 // EC2/OKP: crv; RSA: n
	coseKeyX   = -2 // EC2/OKP: x;   RSA: e
	coseKeyY   = -3 // EC2: y
	coseKeyD   = -4 // EC2/OKP: d
	ktyOKP     = 1
	ktyEC2     = 2
	ktyRSA     = 3
	crvP256    = 1
	crvP384    = 2
	crvP521    = 3
	crvEd25519 = 6
)

// decodeCOSEKey checks a COSE_Key strictly (package doc, "COSE_Key") and
// decodes it with go-cose. For RSA keys, which go-cose does not support, it
// returns the public key itself.
func decodeCOSEKey(data []byte) (*cose.Key, *rsa.PublicKey, error) {
	entries, err := cosewire.DecodeMap(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: COSE_Key: %w", ErrInvalidKey, err)
	}
	params := make(map[any]cbor.RawMessage, len(entries))
	for _, e := range entries {
		params[e.Key] = e.Value
	}
	integer := func(label int64, name string) (int64, error) {
		v, err := cosewire.Int(params[label])
		if err != nil {
			return 0, fmt.Errorf("%w: COSE_Key %s (%d) missing or not an integer", ErrInvalidKey, name, label)
		}
		return v, nil
	}
	bstr := func(label int64, name string, required bool) error {
		raw, ok := params[label]
		if !ok && !required {
			return nil
		}
		if _, err := cosewire.Bytes(raw); err != nil {
			return fmt.Errorf("%w: COSE_Key %s (%d) missing or not a byte string", ErrInvalidKey, name, label)
		}
		return nil
	}
	kty, err := integer(coseKeyKty, "kty")
	if err != nil {
		return nil, nil, err
	}
	if raw, ok := params[int64(coseKeyAlg)]; ok {
		if _, err := cosewire.Int(raw); err != nil {
			return nil, nil, fmt.Errorf("%w: COSE_Key alg (3) must be an integer", ErrInvalidKey)
		}
	}
	// Extension: text kids are taken as their UTF-8 bytes.
	if raw, ok := params[int64(coseKeyKid)]; ok {
		if s, err := cosewire.Text(raw); err == nil {
			params[int64(coseKeyKid)] = cosewire.AppendBstr(nil, []byte(s))
		} else if _, err := cosewire.Bytes(raw); err != nil {
			return nil, nil, fmt.Errorf("%w: COSE_Key kid (2) must be a byte string", ErrInvalidKey)
		}
	}
	switch kty {
	case ktyOKP, ktyEC2:
		if _, err := integer(coseKeyCrv, "crv"); err != nil {
			return nil, nil, err
		}
		if err := bstr(coseKeyX, "x", true); err != nil {
			return nil, nil, err
		}
		if err := bstr(coseKeyY, "y", kty == ktyEC2); err != nil {
			return nil, nil, err
		}
		if err := bstr(coseKeyD, "d", false); err != nil {
			return nil, nil, err
		}
	case ktyRSA:
		return nil, nil, nil // handled by the caller through parseRSACOSEKey
	default:
		return nil, nil, fmt.Errorf("%w: unsupported COSE_Key kty %d (want 1 OKP, 2 EC2, 3 RSA)", ErrInvalidKey, kty)
	}
	normalized, err := cosewire.Enc.Marshal(params)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: COSE_Key: %w", ErrInvalidKey, err)
	}
	var k cose.Key
	if err := k.UnmarshalCBOR(normalized); err != nil {
		return nil, nil, fmt.Errorf("%w: COSE_Key: %w", ErrInvalidKey, err)
	}
	return &k, nil, nil
}

// parseRSACOSEKey reads an RSA public COSE_Key (RFC 8230 §4: n -1, e -2).
// Extension: go-cose does not read RSA keys.
func parseRSACOSEKey(data []byte) (*rsa.PublicKey, []byte, error) {
	entries, err := cosewire.DecodeMap(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: COSE_Key: %w", ErrInvalidKey, err)
	}
	var n, e, kid []byte
	for _, en := range entries {
		switch en.Key {
		case int64(coseKeyCrv):
			n, err = cosewire.Bytes(en.Value)
		case int64(coseKeyX):
			e, err = cosewire.Bytes(en.Value)
		case int64(coseKeyKid):
			if kid, err = cosewire.Bytes(en.Value); err != nil {
				var s string
				s, err = cosewire.Text(en.Value)
				kid = []byte(s)
			}
		case int64(coseKeyD), int64(-5), int64(-6):
			return nil, nil, fmt.Errorf("%w: RSA private COSE keys are not supported; use PEM PKCS#8", ErrInvalidKey)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: COSE_Key RSA parameter %v: %w", ErrInvalidKey, en.Key, err)
		}
	}
	if len(n) == 0 || len(e) == 0 || len(e) > 4 {
		return nil, nil, fmt.Errorf("%w: RSA COSE_Key needs n (-1) and an e (-2) of 1 to 4 bytes", ErrInvalidKey)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, kid, nil
}

// parseCOSEKey reads a public COSE_Key (a private one gives its public half).
func parseCOSEKey(data []byte) (*PublicKey, error) {
	ck, _, err := decodeCOSEKey(data)
	if err != nil {
		return nil, err
	}
	var pub crypto.PublicKey
	var rsaPub *rsa.PublicKey
	var kid []byte
	var alg cose.Algorithm
	if ck == nil {
		if rsaPub, kid, err = parseRSACOSEKey(data); err != nil {
			return nil, err
		}
		pub = rsaPub
		if entries, err := cosewire.DecodeMap(data); err == nil {
			for _, en := range entries {
				if en.Key == int64(coseKeyAlg) {
					a, _ := cosewire.Int(en.Value)
					alg = cose.Algorithm(a)
				}
			}
		}
	} else {
		if pub, err = ck.PublicKey(); err != nil {
			return nil, fmt.Errorf("%w: COSE_Key: %w", ErrInvalidKey, err)
		}
		kid, alg = ck.ID, ck.Algorithm
	}
	pk, err := NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if alg != 0 {
		if err := CheckStatementAlgorithm(alg, pub); err != nil {
			return nil, err
		}
		pk.Alg = alg
	}
	pk.KID = kid
	return pk, nil
}

// parsePrivateCOSEKey reads a private COSE_Key (EC2 or OKP).
func parsePrivateCOSEKey(data []byte) (*PrivateKey, error) {
	ck, _, err := decodeCOSEKey(data)
	if err != nil {
		return nil, err
	}
	if ck == nil {
		return nil, fmt.Errorf("%w: RSA private COSE keys are not supported; use PEM PKCS#8", ErrInvalidKey)
	}
	pub, err := parseCOSEKey(data)
	if err != nil {
		return nil, err
	}
	if _, ok := ck.Params[int64(coseKeyD)]; !ok {
		return nil, fmt.Errorf("%w: the COSE_Key holds no private key (d, -4)", ErrInvalidKey)
	}
	var signer crypto.Signer
	switch crv, _, _, d := ck.EC2(); ck.Type {
	case cose.KeyTypeEC2:
		// Extension: d is parsed strictly and must match x and y.
		curve := map[cose.Curve]elliptic.Curve{cose.CurveP256: elliptic.P256(), cose.CurveP384: elliptic.P384(), cose.CurveP521: elliptic.P521()}[crv]
		if curve == nil {
			return nil, fmt.Errorf("%w: unsupported EC2 curve %v", ErrInvalidKey, crv)
		}
		// Extension: a d shorter than the curve size (leading zero octets
		// dropped, as go-cose itself writes it) is left-padded.
		if size := (curve.Params().BitSize + 7) / 8; len(d) < size {
			d = append(make([]byte, size-len(d), size), d...)
		}
		sk, err := ecdsa.ParseRawPrivateKey(curve, d)
		if err != nil {
			return nil, fmt.Errorf("%w: EC2 d: %w", ErrInvalidKey, err)
		}
		if !sk.PublicKey.Equal(pub.Key) {
			return nil, fmt.Errorf("%w: EC2 d does not match x and y", ErrInvalidKey)
		}
		signer = sk
	case cose.KeyTypeOKP:
		_, _, d := ck.OKP()
		if len(d) != ed25519.SeedSize {
			return nil, fmt.Errorf("%w: Ed25519 d must be 32 bytes", ErrInvalidKey)
		}
		sk := ed25519.NewKeyFromSeed(d)
		if !sk.Public().(ed25519.PublicKey).Equal(pub.Key) {
			return nil, fmt.Errorf("%w: Ed25519 d does not match x", ErrInvalidKey)
		}
		signer = sk
	}
	out := &PrivateKey{Signer: signer, Alg: pub.Alg, KID: pub.KID}
	if out.KID == nil {
		out.KID = pub.JWKThumbprint()
	}
	return out, nil
}

// coseKeyParams returns the required public parameters of a COSE_Key, as
// RFC 9679 §3 lists them.
func coseKeyParams(pub crypto.PublicKey) (map[int64]any, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		crv := map[elliptic.Curve]int64{elliptic.P256(): crvP256, elliptic.P384(): crvP384, elliptic.P521(): crvP521}[p.Curve]
		if crv == 0 {
			return nil, fmt.Errorf("%w: unsupported curve", ErrInvalidKey)
		}
		raw, err := p.Bytes() // 0x04 || x || y, each coordinate padded
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
		size := (len(raw) - 1) / 2
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

// coseKey returns the go-cose key for the public half, with kid (the
// published kid, else the COSE key thumbprint) and alg. RSA keys, which
// go-cose cannot hold, come back as a parameter map.
func (k *PublicKey) coseKey(priv crypto.Signer) (*cose.Key, map[int64]any, error) {
	kid := k.KID
	if kid == nil {
		kid = k.COSEThumbprint()
	}
	if rk, ok := k.Key.(*rsa.PublicKey); ok {
		if priv != nil {
			return nil, nil, fmt.Errorf("%w: COSE_Key private encoding supports EC2 and OKP keys only", ErrInvalidKey)
		}
		m, err := coseKeyParams(rk)
		if err != nil {
			return nil, nil, err
		}
		m[coseKeyKid] = kid
		if k.Alg != 0 {
			m[coseKeyAlg] = int64(k.Alg)
		}
		return nil, m, nil
	}
	var ck *cose.Key
	var err error
	if priv != nil {
		ck, err = cose.NewKeyFromPrivate(priv)
	} else {
		ck, err = cose.NewKeyFromPublic(k.Key)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: COSE_Key: %w", ErrInvalidKey, err)
	}
	ck.ID = kid
	ck.Algorithm = k.Alg
	return ck, nil, nil
}

// MarshalCOSEKey encodes the public key as a COSE_Key with its kid (the
// published kid, else the COSE key thumbprint) and alg.
func (k *PublicKey) MarshalCOSEKey() ([]byte, error) {
	ck, m, err := k.coseKey(nil)
	if err != nil {
		return nil, err
	}
	if ck == nil {
		return cosewire.Enc.Marshal(m)
	}
	return canonical(ck.MarshalCBOR())
}

// canonical re-encodes go-cose's output with the core deterministic rules,
// so that key files and key sets are byte-stable.
func canonical(b []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("%w: COSE_Key: %w", ErrInvalidKey, err)
	}
	var v any
	if err := cosewire.Dec.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%w: COSE_Key: %w", ErrInvalidKey, err)
	}
	return cosewire.Enc.Marshal(v)
}

// MarshalCOSEKeySet encodes the keys as a COSE_KeySet (RFC 9052 §7).
func MarshalCOSEKeySet(ks Set) ([]byte, error) {
	out := make([]cbor.RawMessage, 0, len(ks))
	for _, k := range ks {
		b, err := k.MarshalCOSEKey()
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return cosewire.Enc.Marshal(out)
}

// MarshalCOSEKey encodes the private key as a COSE_Key (EC2 and OKP only).
// Keep it secret: write it with mode 0600.
func (k *PrivateKey) MarshalCOSEKey() ([]byte, error) {
	ck, _, err := k.Public().coseKey(k.Signer)
	if err != nil {
		return nil, err
	}
	if sk, ok := k.Signer.(*ecdsa.PrivateKey); ok {
		// go-cose writes d without its leading zero octets; write the
		// fixed-length form (as ecdsa.PrivateKey.Bytes gives it).
		d, err := sk.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
		ck.Params[int64(coseKeyD)] = d
	}
	return canonical(ck.MarshalCBOR())
}
