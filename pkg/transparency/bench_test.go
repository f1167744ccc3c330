package transparency_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/loadgen"
)

// BenchmarkRegister measures in-process registration (policy check, ES256
// verify, durable store, durable log append) from 64 goroutines, without
// waiting for receipts.
func BenchmarkRegister(b *testing.B) {
	issuer, _ := keys.Generate(cose.AlgorithmES256)
	pub, _ := issuer.Public().MarshalJWK()
	dir := b.TempDir()
	kf := dir + "/issuer.jwk"
	writeFile(b, kf, pub)
	pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, []string{kf}, nil)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := transparency.Open(b.Context(), transparency.Options{Dir: b.TempDir(), Policy: pol})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close(b.Context())
	stmts := make([][]byte, b.N)
	for i := range stmts {
		stmts[i], _ = scitt.SignStatement(b.Context(), issuer, scitt.Claims{Issuer: "https://b", Subject: fmt.Sprint(i)}, []byte(fmt.Sprint("payload", i)))
	}
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if _, err := svc.Register(b.Context(), stmts[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkHTTPRegister runs the load generator against the handler in the
// same process (for profiles; the budget figures come from the CLI run in
// docs/benchmarks/transparency.md). One op = one registration with receipt.
func BenchmarkHTTPRegister(b *testing.B) {
	issuer, _ := keys.Generate(cose.AlgorithmES256)
	pub, _ := issuer.Public().MarshalJWK()
	dir := b.TempDir()
	writeFile(b, dir+"/issuer.jwk", pub)
	pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, []string{dir + "/issuer.jwk"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := transparency.Open(b.Context(), transparency.Options{Dir: b.TempDir(), Policy: pol})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close(b.Context())
	srv := httptest.NewServer(svc.Handler(transparency.HandlerOptions{}))
	defer srv.Close()
	b.ResetTimer()
	rep, err := loadgen.Run(b.Context(), loadgen.Config{TS: srv.URL, Key: issuer, Count: b.N, Concurrency: 64})
	if err != nil {
		b.Fatal(err)
	}
	b.Log(rep.String())
	b.ReportMetric(rep.Rate(), "regs/s")
	b.ReportMetric(float64(rep.P99.Milliseconds()), "p99-ms")
}

// BenchmarkES256VerifyRaw is the baseline: one raw ECDSA P-256 verification.
func BenchmarkES256VerifyRaw(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := sha256.Sum256([]byte("baseline"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, digest[:])
	for b.Loop() {
		if !ecdsa.VerifyASN1(&k.PublicKey, digest[:], sig) {
			b.Fatal("verify failed")
		}
	}
}

// BenchmarkStatementCheck is the per-registration verification work of the
// service: parse the statement and apply the policy (ES256 verify included).
func BenchmarkStatementCheck(b *testing.B) {
	issuer, _ := keys.Generate(cose.AlgorithmES256)
	pub, _ := issuer.Public().MarshalJWK()
	kf := b.TempDir() + "/issuer.jwk"
	writeFile(b, kf, pub)
	pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, []string{kf}, nil)
	if err != nil {
		b.Fatal(err)
	}
	stmt, _ := scitt.SignStatement(b.Context(), issuer, scitt.Claims{Issuer: "https://b", Subject: "s"}, make([]byte, 1024))
	for b.Loop() {
		st, err := scitt.ParseStatement(stmt)
		if err != nil {
			b.Fatal(err)
		}
		if err := pol.Check(b.Context(), st, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
