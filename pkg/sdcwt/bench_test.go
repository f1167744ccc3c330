package sdcwt

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/keys"
)

// BenchmarkVerifyPresentation10 is pkg/sdjwt's benchmark of the same name
// for the SD-CWT form: Verify of an SD-KBT whose SD-CWT carries 10
// disclosures, against the floor of the same work measured interleaved in
// the same run: one raw ES256 verify of the SD-CWT plus one of the SD-KBT
// (crypto/ecdsa over the Sig_structure, no parsing). It reports the medians
// and their ratio.
func BenchmarkVerifyPresentation10(b *testing.B) {
	issuer, _ := keys.Generate(cose.AlgorithmES256)
	holder, _ := keys.Generate(cose.AlgorithmES256)
	claims := map[any]any{ClaimIss: "https://issuer.example", ClaimVct: "v", "artifact_digest": "sha256:abab"}
	var names []string
	for i := range 10 {
		n := fmt.Sprintf("claim_%d", i)
		claims[n] = SD{fmt.Sprintf("https://github.com/acme/widgets/value/%d", i)}
		names = append(names, n)
	}
	s, err := Issue(issuer, holder.Public(), claims, WithDecoys(4))
	if err != nil {
		b.Fatal(err)
	}
	sel, err := s.Select(names)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	kbt, err := sel.Present(holder, Presentation{Audience: "aud", Nonce: "nonce", IssuedAt: now})
	if err != nil {
		b.Fatal(err)
	}
	ks := keys.Set{issuer.Public()}
	kmsg, err := cosewire.Parse(kbt, MaxSize)
	if err != nil {
		b.Fatal(err)
	}
	rawVerify := func(pub *ecdsa.PublicKey, m *cosewire.Sign1) bool {
		h := sha256.Sum256(cosewire.SigStructure(m.Protected, m.Payload))
		r, s := new(big.Int).SetBytes(m.Signature[:32]), new(big.Int).SetBytes(m.Signature[32:])
		return ecdsa.Verify(pub, h[:], r, s)
	}
	ipub := issuer.Public().Key.(*ecdsa.PublicKey)
	hpub := holder.Public().Key.(*ecdsa.PublicKey)
	fulls, raws := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		res, err := Verify(kbt, ks, WithAudience("aud"), WithNonce("nonce"), WithClock(func() time.Time { return now }))
		if err != nil || len(res.Disclosed) != 10 {
			b.Fatal(err)
		}
		t1 := time.Now()
		if !rawVerify(ipub, s.msg) || !rawVerify(hpub, kmsg) {
			b.Fatal("raw verify")
		}
		t2 := time.Now()
		fulls = append(fulls, t1.Sub(t0))
		raws = append(raws, t2.Sub(t1))
	}
	slices.Sort(fulls)
	slices.Sort(raws)
	full, raw := fulls[len(fulls)/2], raws[len(raws)/2]
	b.ReportMetric(float64(full.Nanoseconds()), "ns/verify")
	b.ReportMetric(float64(raw.Nanoseconds()), "ns/raw2xES256")
	b.ReportMetric(float64(full)/float64(raw), "ratio")
}
