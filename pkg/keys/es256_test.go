package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/veraison/go-cose"
)

// TestES256MatchesGoCOSE checks the ES256 fast path against go-cose's
// verifier on valid signatures, signatures with r or s changed, zero,
// too large, short or long, and another key: both must agree on every one.
func TestES256MatchesGoCOSE(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := cose.NewSigner(cose.AlgorithmES256, priv)
	if err != nil {
		t.Fatal(err)
	}
	n := elliptic.P256().Params().N.FillBytes(make([]byte, 32))
	for i := range 200 {
		tbs := make([]byte, i*7)
		rand.Read(tbs)
		sig, err := signer.Sign(rand.Reader, tbs)
		if err != nil {
			t.Fatal(err)
		}
		cases := map[string][]byte{"valid": sig}
		flip := append([]byte(nil), sig...)
		flip[i%64] ^= 1 << (i % 8)
		cases["flipped bit"] = flip
		zr := append(make([]byte, 32), sig[32:]...)
		cases["r = 0"] = zr
		cases["s = n"] = append(append([]byte(nil), sig[:32]...), n...)
		cases["short"] = sig[:63]
		cases["long"] = append(append([]byte(nil), sig...), 0)
		lead := append([]byte(nil), sig...)
		lead[0], lead[32] = 0, 0 // leading zeros are stripped in DER
		cases["leading zeros"] = lead
		for name, s := range cases {
			for _, key := range []*ecdsa.PublicKey{&priv.PublicKey, &other.PublicKey} {
				v, _ := cose.NewVerifier(cose.AlgorithmES256, key)
				want := v.Verify(tbs, s) == nil
				got := (&PublicKey{Key: key}).Verify(cose.AlgorithmES256, tbs, s)
				if (got == nil) != want {
					t.Fatalf("tbs %d bytes, %s: fast path %v, go-cose ok=%v", len(tbs), name, got, want)
				}
				if got != nil && !errors.Is(got, ErrBadSignature) {
					t.Fatalf("%s: error %v does not wrap ErrBadSignature", name, got)
				}
			}
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := cose.NewSigner(cose.AlgorithmES256, priv)
	tbs := make([]byte, 1200)
	sig, _ := signer.Sign(rand.Reader, tbs)
	b.Run("go-cose", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, _ := cose.NewVerifier(cose.AlgorithmES256, &priv.PublicKey)
			if v.Verify(tbs, sig) != nil {
				b.Fatal("verify")
			}
		}
	})
	b.Run("keys", func(b *testing.B) {
		b.ReportAllocs()
		k := &PublicKey{Key: &priv.PublicKey}
		for b.Loop() {
			if k.Verify(cose.AlgorithmES256, tbs, sig) != nil {
				b.Fatal("verify")
			}
		}
	})
}
