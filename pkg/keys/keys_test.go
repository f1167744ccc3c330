package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/cosewire"
)

func mustKey(t testing.TB, alg cose.Algorithm) *PrivateKey {
	t.Helper()
	k, err := Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

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
			jwks, err := MarshalJWKSet(Set{pub})
			if err != nil {
				t.Fatal(err)
			}
			coseKey, err := pub.MarshalCOSEKey()
			if err != nil {
				t.Fatal(err)
			}
			coseSet, err := MarshalCOSEKeySet(Set{pub, mustKey(t, cose.AlgorithmES256).Public()})
			if err != nil {
				t.Fatal(err)
			}
			pubForms := map[string][]byte{
				"jwk": jwk, "jwks": jwks, "cose_key": coseKey, "cose_keyset": coseSet,
				"pem spki":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}),
				"pem pkcs8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
			}
			for name, b := range pubForms {
				ks, err := ParsePublic(b)
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
				k, err := ParsePrivate(b)
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
			if _, err := ParsePrivate(jwk); !errors.Is(err, ErrInvalidKey) {
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

func TestSetLookup(t *testing.T) {
	a, b := mustKey(t, cose.AlgorithmES256).Public(), mustKey(t, cose.AlgorithmES256).Public()
	b.KID = []byte("my-key-2026")
	ks := Set{a, b}
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
		if _, err := ParsePublic(b); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: %v, want ErrInvalidKey", name, err)
		}
	}
}

// TestJWKStringKid: a COSE object whose kid is the UTF-8 bytes of a JWK's
// "kid" member (Transmute's convention) names that key, even when the JWK
// kid is the base64url thumbprint (issue 11 item 1).
func TestJWKStringKid(t *testing.T) {
	k := mustKey(t, cose.AlgorithmES256).Public()
	for name, kid := range map[string]string{
		"thumbprint b64url": base64.RawURLEncoding.EncodeToString(k.JWKThumbprint()),
		"cose thumbprint":   base64.RawURLEncoding.EncodeToString(k.COSEThumbprint()),
		"free text":         "did:web:example.com#key-1",
	} {
		t.Run(name, func(t *testing.T) {
			jwk := []byte(fmt.Sprintf(`{"kty":"EC","crv":"P-256","x":%q,"y":%q,"kid":%q}`,
				b64(k.Key.(*ecdsa.PublicKey), 1), b64(k.Key.(*ecdsa.PublicKey), 2), kid))
			ks, err := ParsePublic(jwk)
			if err != nil {
				t.Fatal(err)
			}
			if !ks.Names([]byte(kid)) {
				t.Errorf("UTF-8 kid %q does not name the key", kid)
			}
			if !ks.Names(k.JWKThumbprint()) || !ks.Names(k.COSEThumbprint()) {
				t.Error("thumbprints no longer name the key")
			}
			if ks.Names([]byte("other")) {
				t.Error("an unrelated kid names the key")
			}
			out, err := ks[0].MarshalJWK()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(out, []byte(fmt.Sprintf("%q", kid))) {
				t.Errorf("written JWK lost the published kid %q: %s", kid, out)
			}
		})
	}
}

func b64(p *ecdsa.PublicKey, part int) string {
	raw, _ := p.Bytes()
	if part == 1 {
		return base64.RawURLEncoding.EncodeToString(raw[1:33])
	}
	return base64.RawURLEncoding.EncodeToString(raw[33:])
}

// TestCOSEKeyExtensions: the documented extensions to go-cose's COSE_Key.
func TestCOSEKeyExtensions(t *testing.T) {
	k := mustKey(t, cose.AlgorithmES256)
	raw, _ := k.Public().Key.(*ecdsa.PublicKey).Bytes()
	enc := func(m map[any]any) []byte {
		b, err := cosewire.Enc.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := func() map[any]any {
		return map[any]any{int64(1): int64(2), int64(-1): int64(1), int64(-2): raw[1:33], int64(-3): raw[33:]}
	}
	textKid := base()
	textKid[int64(2)] = "my-key"
	ks, err := ParsePublic(enc(textKid))
	if err != nil || !bytes.Equal(ks[0].KID, []byte("my-key")) {
		t.Fatalf("text kid: %v, keys %v", err, ks)
	}
	badCrv := base()
	badCrv[int64(-1)] = []byte{1} // go-cose would panic on this
	if _, err := ParsePublic(enc(badCrv)); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("non-integer crv: %v, want ErrInvalidKey", err)
	}
	wrongD := base()
	other, _ := mustKey(t, cose.AlgorithmES256).Signer.(*ecdsa.PrivateKey).Bytes()
	wrongD[int64(-4)] = other
	if _, err := ParsePrivate(enc(wrongD)); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("d of another key: %v, want ErrInvalidKey", err)
	}
	rsaKey := mustKey(t, cose.AlgorithmPS256).Public()
	rb, err := rsaKey.MarshalCOSEKey()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePublic(rb)
	if err != nil || !back[0].Key.(*rsa.PublicKey).Equal(rsaKey.Key) {
		t.Fatalf("RSA COSE_Key round trip: %v", err)
	}
}

func TestAlgorithmTable(t *testing.T) {
	for _, name := range []string{"ES256", "ES384", "ES512", "PS256", "EdDSA"} {
		alg, err := ParseStatementAlgorithm(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		a, ok := AlgorithmOfCOSE(alg)
		if !ok || a.Name != name {
			t.Errorf("%s: round trip gave %q", name, a.Name)
		}
		if j, ok := AlgorithmOfJOSE(a.JOSE); !ok || j.COSE != alg {
			t.Errorf("%s: JOSE round trip", name)
		}
	}
	for _, name := range []string{"RS256", "HS256", "none", "es256"} {
		if _, err := ParseStatementAlgorithm(name); !errors.Is(err, ErrUnsupportedAlgorithm) {
			t.Errorf("%s: %v, want ErrUnsupportedAlgorithm", name, err)
		}
	}
	for _, a := range WITAlgorithms() {
		if a == "EdDSA" || a == "none" || a[0] == 'H' {
			t.Errorf("WIT profile allows %s", a)
		}
	}
}

// FuzzParseKeys: key parsing never panics and keys that parse have both
// thumbprints and re-encode to keys that parse to the same key.
func FuzzParseKeys(f *testing.F) {
	for _, root := range []string{"../../testdata/scitt-cose-v1", "../../testdata/trustfabric-v1"} {
		dirs, _ := os.ReadDir(root)
		for _, d := range dirs {
			for _, n := range []string{"issuer-key.pub", "log-key.pub", "issuer-key.jwk", "log-key.jwk"} {
				if b, err := os.ReadFile(filepath.Join(root, d.Name(), n)); err == nil {
					f.Add(b)
				}
			}
		}
	}
	k := mustKey(f, -7)
	ck, _ := k.Public().MarshalCOSEKey()
	cks, _ := MarshalCOSEKeySet(Set{k.Public()})
	pj, _ := k.MarshalJWK()
	pc, _ := k.MarshalCOSEKey()
	f.Add(ck)
	f.Add(cks)
	f.Add(pj)
	f.Add(pc)
	f.Fuzz(func(t *testing.T, b []byte) {
		if ks, err := ParsePublic(b); err == nil {
			for _, k := range ks {
				if len(k.JWKThumbprint()) != 32 || len(k.COSEThumbprint()) != 32 {
					t.Fatal("parsed key without thumbprints")
				}
				enc, err := k.MarshalCOSEKey()
				if err != nil {
					continue
				}
				again, err := ParsePublic(enc)
				if err != nil || !bytes.Equal(again[0].JWKThumbprint(), k.JWKThumbprint()) {
					t.Fatalf("COSE_Key re-encoding does not parse back: %v", err)
				}
			}
		}
		_, _ = ParsePrivate(b)
	})
}
