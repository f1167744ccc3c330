package scitt

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/veraison/go-cose"
)

func TestKeyFormatsRoundTrip(t *testing.T) {
	for _, alg := range []cose.Algorithm{cose.AlgorithmES256, cose.AlgorithmES384, cose.AlgorithmES512, cose.AlgorithmEdDSA, cose.AlgorithmPS256} {
		t.Run(alg.String(), func(t *testing.T) {
			priv := mustKey(t, alg)
			pub := priv.Public()
			pkcs8, err := x509.MarshalPKCS8PrivateKey(priv.Signer)
			if err != nil {
				t.Fatal(err)
			}
			spki, err := x509.MarshalPKIXPublicKey(pub.Key)
			if err != nil {
				t.Fatal(err)
			}
			jwk, err := pub.MarshalJWK()
			if err != nil {
				t.Fatal(err)
			}
			jwks, err := MarshalJWKSet(KeySet{pub})
			if err != nil {
				t.Fatal(err)
			}
			coseKey, err := pub.MarshalCOSEKey()
			if err != nil {
				t.Fatal(err)
			}
			coseSet, err := MarshalCOSEKeySet(KeySet{pub, mustKey(t, cose.AlgorithmES256).Public()})
			if err != nil {
				t.Fatal(err)
			}
			pubForms := map[string][]byte{
				"jwk": jwk, "jwks": jwks, "cose_key": coseKey, "cose_keyset": coseSet,
				"pem spki":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}),
				"pem pkcs8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
			}
			for name, b := range pubForms {
				ks, err := ParsePublicKeys(b)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !ks[0].Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub.Key) || ks[0].Alg != alg {
					t.Errorf("%s: key or alg %v differs", name, ks[0].Alg)
				}
				if !bytes.Equal(ks[0].JWKThumbprint(), pub.JWKThumbprint()) || !bytes.Equal(ks[0].COSEThumbprint(), pub.COSEThumbprint()) {
					t.Errorf("%s: thumbprints differ", name)
				}
			}
			privJWK, err := priv.MarshalJWK()
			if err != nil {
				t.Fatal(err)
			}
			privForms := map[string][]byte{"jwk": privJWK, "pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})}
			if alg != cose.AlgorithmPS256 {
				ck, err := priv.MarshalCOSEKey()
				if err != nil {
					t.Fatal(err)
				}
				privForms["cose_key"] = ck
			}
			for name, b := range privForms {
				k, err := ParsePrivateKey(b)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if k.Alg != alg || !bytes.Equal(k.Public().JWKThumbprint(), pub.JWKThumbprint()) {
					t.Errorf("%s: alg %v or key differs", name, k.Alg)
				}
				if !bytes.Equal(k.KID, priv.KID) {
					t.Errorf("%s: kid %x, want the raw JWK thumbprint %x", name, k.KID, priv.KID)
				}
			}
			if _, err := ParsePrivateKey(jwk); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("public JWK as private key: %v", err)
			}
		})
	}
}

// TestCOSEThumbprintEncoding checks the RFC 9679 §3 input byte by byte: the
// required EC2 parameters in deterministic order {1: 2, -1: 1, -2: x, -3: y}.
func TestCOSEThumbprintEncoding(t *testing.T) {
	k := mustKey(t, cose.AlgorithmES256).Public()
	raw, err := k.Key.(*ecdsa.PublicKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0xa4, 0x01, 0x02, 0x20, 0x01, 0x21, 0x58, 0x20}
	want = append(want, raw[1:33]...)
	want = append(want, 0x22, 0x58, 0x20)
	want = append(want, raw[33:]...)
	sum := sha256.Sum256(want)
	if !bytes.Equal(k.COSEThumbprint(), sum[:]) {
		t.Fatalf("COSE thumbprint differs from SHA-256 of the canonical encoding")
	}
}

func TestKeySetLookup(t *testing.T) {
	a, b := mustKey(t, cose.AlgorithmES256).Public(), mustKey(t, cose.AlgorithmES256).Public()
	b.KID = []byte("my-key-2026")
	ks := KeySet{a, b}
	for name, c := range map[string]struct {
		kid  []byte
		want *PublicKey
		n    int
	}{
		"jwk thumbprint":  {a.JWKThumbprint(), a, 1},
		"cose thumbprint": {b.COSEThumbprint(), b, 1},
		"string kid":      {[]byte("my-key-2026"), b, 1},
		"unknown":         {[]byte("nope"), nil, 2},
		"none":            {nil, nil, 2},
	} {
		got := ks.Lookup(c.kid)
		if len(got) != c.n || (c.want != nil && got[0] != c.want) {
			t.Errorf("%s: got %d keys", name, len(got))
		}
	}
}

func TestParseKeysRejectsGarbage(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":     nil,
		"text":      []byte("not a key"),
		"json":      []byte(`{"kty":"oct","k":"AAAA"}`),
		"empty set": []byte(`{"keys":[]}`),
		"bad pem":   []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
		"cose kty":  {0xa1, 0x01, 0x04},
		"cose set":  {0x80},
	} {
		if _, err := ParsePublicKeys(b); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: %v, want ErrInvalidKey", name, err)
		}
	}
}
