package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/trustfabric/trustfabric/pkg/workload"
)

// rawExchangeOpsNs measures the baseline inline (testing.Benchmark cannot
// nest): ns per (RS256 verify + ES256 verify + ES256 sign), over iters.
func rawExchangeOpsNs(iters int) float64 {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(wimseCurve(), rand.Reader)
	msg := make([]byte, 1200)
	rand.Read(msg)
	d := sha256.Sum256(msg)
	rsig, _ := rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, d[:])
	esig, _ := ecdsa.SignASN1(rand.Reader, ek, d[:])
	start := time.Now()
	for i := 0; i < iters; i++ {
		d := sha256.Sum256(msg)
		_ = rsa.VerifyPKCS1v15(&rk.PublicKey, crypto.SHA256, d[:], rsig)
		ecdsa.VerifyASN1(&ek.PublicKey, d[:], esig)
		ecdsa.SignASN1(rand.Reader, ek, d[:])
	}
	return float64(time.Since(start).Nanoseconds()) / float64(iters)
}

// BenchmarkRawExchangeOps is the baseline of BenchmarkExchange: the raw
// signature operations an exchange needs — one RS256 verification (the CI
// token), one ES256 verification (the DPoP proof) and one ES256 signature
// (the WIT).
func BenchmarkRawExchangeOps(b *testing.B) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(wimseCurve(), rand.Reader)
	msg := make([]byte, 1200)
	rand.Read(msg)
	d := sha256.Sum256(msg)
	rsig, _ := rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, d[:])
	esig, _ := ecdsa.SignASN1(rand.Reader, ek, d[:])
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := sha256.Sum256(msg)
		if rsa.VerifyPKCS1v15(&rk.PublicKey, crypto.SHA256, d[:], rsig) != nil || !ecdsa.VerifyASN1(&ek.PublicKey, d[:], esig) {
			b.Fatal("verify")
		}
		if _, err := ecdsa.SignASN1(rand.Reader, ek, d[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExchange runs whole token exchanges in process (form parsing,
// DPoP, CI token verification with cached discovery keys, policy, WIT
// minting). CI tokens and proofs are minted before the timer starts. The
// "x-raw" metric is the ratio to BenchmarkRawExchangeOps in the same run.
func BenchmarkExchange(b *testing.B) {
	e := newEnv(b, nil)
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		tok, err := e.gh.MintRun(oidctest.GitHubRun{}, e.srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		key := newKey(b)
		proof, _ := workload.NewDPoPProof(key, e.s.TokenURL())
		form := url.Values{"grant_type": {wimse.GrantTypeTokenExchange}, "subject_token": {tok}, "subject_token_type": {wimse.TokenTypeIDToken}}
		r, _ := http.NewRequestWithContext(context.Background(), "POST", e.s.TokenURL(), strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("DPoP", proof)
		reqs[i] = r
	}
	// Warm the discovery and JWKS cache outside the timed loop.
	warm, _ := e.gh.MintRun(oidctest.GitHubRun{}, e.srv.URL)
	_ = e.exchangeErr(b, warm)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, _, err := e.s.exchange(reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	elapsed := b.Elapsed()
	if base := rawExchangeOpsNs(max(b.N, 100)); base > 0 {
		b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N)/base, "x-raw")
	}
}
