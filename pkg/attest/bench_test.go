package attest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/trustfabric/trustfabric/pkg/workload"
)

// BenchmarkAttest runs the whole flow against the in-process environment
// (design.md §7 budget: ≤ 1 s excluding registry upload). It reports the mean
// of each step and "excl-upload-ms", the sum of every step but attach. The
// service runs with its default checkpoint interval (100 ms, Tessera's
// minimum): a receipt waits for a published checkpoint covering the entry.
func BenchmarkAttest(b *testing.B) {
	env := startEnv(b, servertest.Config{})
	o := options(env, env.ImageTag)
	sums := map[string]time.Duration{}
	o.Progress = func(s attest.Step) { sums[s.Name] += s.Duration }
	b.ResetTimer()
	for b.Loop() {
		if _, err := attest.Run(b.Context(), o); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	var excl time.Duration
	for name, d := range sums {
		b.ReportMetric(float64(d.Microseconds())/1000/n, name+"-ms")
		if name != attest.StepAttach {
			excl += d
		}
	}
	b.ReportMetric(float64(excl.Microseconds())/1000/n, "excl-upload-ms")
}

// BenchmarkRegisterOnly is the baseline of the register step: one SCRAPI
// registration of a fresh WIT-bound statement with WIMSE headers, nothing
// else, against the same service.
func BenchmarkRegisterOnly(b *testing.B) {
	env := startEnv(b, servertest.Config{})
	ctx := b.Context()
	creds, err := workload.Obtain(ctx, workload.ObtainOptions{Server: env.IdentityURL, Getenv: env.Getenv, Out: &bytes.Buffer{}})
	if err != nil {
		b.Fatal(err)
	}
	wk, _ := keys.NewPrivateKey(creds.Key.Signer)
	c, err := scrapi.NewClient(env.TSURL, scrapi.WithHTTPClient(&http.Client{
		Transport: &wimse.Transport{Credentials: wimse.Credentials{WIT: creds.WIT, Key: wk}}}))
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		b.StopTimer()
		stmt, err := scitt.SignStatement(ctx, creds.Key, scitt.Claims{Issuer: creds.ID.String(), Subject: "oci://" + env.Image},
			[]byte{byte(i), byte(i >> 8), byte(i >> 16)}, scitt.WithWIT(creds.WIT))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := c.Register(ctx, stmt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkES256Sign is the raw-crypto baseline: one ECDSA P-256 signature
// over a SHA-256 digest.
func BenchmarkES256Sign(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := sha256.Sum256([]byte("trustfabric"))
	for b.Loop() {
		if _, err := ecdsa.SignASN1(rand.Reader, k, h[:]); err != nil {
			b.Fatal(err)
		}
	}
}
