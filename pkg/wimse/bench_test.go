package wimse

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// rawES256Verify is the baseline: one SHA-256 and one ECDSA P-256
// verification, the cryptographic core of verifying one ES256 JWS.
func rawES256Verify(b *testing.B, n int) {
	k, _ := keys.Generate(cose.AlgorithmES256)
	msg := make([]byte, 600)
	rand.Read(msg)
	d := sha256.Sum256(msg)
	sig, _ := ecdsa.SignASN1(rand.Reader, k.Signer.(*ecdsa.PrivateKey), d[:])
	pub := k.Signer.Public().(*ecdsa.PublicKey)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < n; j++ {
			d := sha256.Sum256(msg)
			if !ecdsa.VerifyASN1(pub, d[:], sig) {
				b.Fatal("verify")
			}
		}
	}
}

// rawES256VerifyNs measures the baseline inline (testing.Benchmark cannot
// nest): ns per n raw ES256 verifications, averaged over iters.
func rawES256VerifyNs(n, iters int) float64 {
	k, _ := keys.Generate(cose.AlgorithmES256)
	msg := make([]byte, 600)
	rand.Read(msg)
	d := sha256.Sum256(msg)
	sig, _ := ecdsa.SignASN1(rand.Reader, k.Signer.(*ecdsa.PrivateKey), d[:])
	pub := k.Signer.Public().(*ecdsa.PublicKey)
	start := time.Now()
	for i := 0; i < iters; i++ {
		for j := 0; j < n; j++ {
			d := sha256.Sum256(msg)
			ecdsa.VerifyASN1(pub, d[:], sig)
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(iters)
}

// BenchmarkRawES256VerifyTwice is the baseline of BenchmarkVerifyWITAndWPT.
func BenchmarkRawES256VerifyTwice(b *testing.B) { rawES256Verify(b, 2) }

// BenchmarkVerifyWITAndWPT verifies a WIT and a fresh WPT (with the replay
// cache), as the middleware does per request; the "x-raw" metric is the
// ratio to two raw ES256 verifications measured in the same run.
func BenchmarkVerifyWITAndWPT(b *testing.B) {
	f := newFixture(b)
	const aud = "https://ts.example/entries"
	wpts := make([]string, b.N)
	for i := range wpts {
		wpts[i], _ = MintWPT(f.workload, f.wit, aud, time.Minute)
	}
	pol := ProofPolicy{Audiences: []string{aud}, Replay: NewReplayCache(b.N + 1)}
	bundles := Bundles{f.bundle}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w, err := ParseWIT(f.wit, bundles)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := VerifyWPT(wpts[i], w, pol); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	elapsed := b.Elapsed()
	if base := rawES256VerifyNs(2, max(b.N, 200)); base > 0 {
		b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N)/base, "x-raw")
	}
}
