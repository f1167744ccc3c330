package scitt

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"os"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// The benchmarks put each operation beside a raw crypto/ecdsa verify of the
// same key size, so the overhead reads as a ratio (docs/benchmarks.md).

func BenchmarkRawECDSAVerifyP256(b *testing.B) {
	key := mustKey(b, cose.AlgorithmES256)
	digest := sha256.Sum256([]byte("hello"))
	sig, err := ecdsa.SignASN1(nil, key.Signer.(*ecdsa.PrivateKey), digest[:])
	if err != nil {
		b.Fatal(err)
	}
	pub := key.Signer.Public().(*ecdsa.PublicKey)
	b.ResetTimer()
	for b.Loop() {
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkStatementSign(b *testing.B) {
	key := mustKey(b, cose.AlgorithmES256)
	payload := make([]byte, 2048)
	for b.Loop() {
		if _, err := SignStatement(ctx, key, testClaims(), payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStatementVerify(b *testing.B) {
	key := mustKey(b, cose.AlgorithmES256)
	payload := make([]byte, 2048)
	raw, err := SignStatement(ctx, key, testClaims(), payload)
	if err != nil {
		b.Fatal(err)
	}
	ks := keys.Set{key.Public()}
	b.ResetTimer()
	for b.Loop() {
		s, err := ParseStatement(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Verify(ks, WithPreimage(payload)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatementParse measures parsing alone (what a registration does
// before its one signature check): headers, CWT claims, entry hash.
func BenchmarkStatementParse(b *testing.B) {
	key := mustKey(b, cose.AlgorithmES256)
	raw, err := SignStatement(ctx, key, testClaims(), make([]byte, 1024))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseStatement(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReceiptVerify(b *testing.B) {
	stmt, err := os.ReadFile("../../testdata/trustfabric-v1/valid/statement.cose")
	if err != nil {
		b.Fatal(err)
	}
	rb, err := os.ReadFile("../../testdata/trustfabric-v1/valid/receipt.cose")
	if err != nil {
		b.Fatal(err)
	}
	ks, err := keys.LoadPublic("../../testdata/trustfabric-v1/valid/log-key.jwk")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		r, err := ParseReceipt(rb)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.VerifyInclusion(stmt, ks, LeafIETF); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRatio interleaves a raw ES256 verify with a statement
// verify and a receipt verify in every iteration, so that load on the
// machine affects all three alike, and reports each as a ratio to the raw
// verify (the budget in design.md §7 is 1.3×).
func BenchmarkVerifyRatio(b *testing.B) {
	key := mustKey(b, cose.AlgorithmES256)
	digest := sha256.Sum256([]byte("hello"))
	sig, err := ecdsa.SignASN1(nil, key.Signer.(*ecdsa.PrivateKey), digest[:])
	if err != nil {
		b.Fatal(err)
	}
	pub := key.Signer.Public().(*ecdsa.PublicKey)
	payload := make([]byte, 2048)
	stmt, err := SignStatement(ctx, key, testClaims(), payload)
	if err != nil {
		b.Fatal(err)
	}
	ts := serviceKey(b)
	receipt := issueFor(b, ts, stmt, 5, 1000, LeafIETF)
	sks, tks := keys.Set{key.Public()}, keys.Set{ts.Public()}
	var raw, st, rc time.Duration
	for b.Loop() {
		t0 := time.Now()
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			b.Fatal("raw verify failed")
		}
		t1 := time.Now()
		s, err := ParseStatement(stmt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Verify(sks, WithPreimage(payload)); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		r, err := ParseReceipt(receipt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.VerifyInclusion(stmt, tks, LeafIETF); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		raw, st, rc = raw+t1.Sub(t0), st+t2.Sub(t1), rc+t3.Sub(t2)
	}
	b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N), "raw-ns/op")
	b.ReportMetric(float64(st)/float64(raw), "statement/raw")
	b.ReportMetric(float64(rc)/float64(raw), "receipt/raw")
}

// BenchmarkReceiptVerifyCCF parses and verifies Microsoft's CCF receipt (vds
// 2, ES384) against its statement, interleaved with a raw P-384 ECDSA verify
// so the overhead reads as a ratio (receipt/raw).
func BenchmarkReceiptVerifyCCF(b *testing.B) {
	dir := "../../testdata/scitt-cose-v1/valid-ccf-vds2"
	stmt, err := os.ReadFile(dir + "/statement.cose")
	if err != nil {
		b.Fatal(err)
	}
	rb, err := os.ReadFile(dir + "/receipt.cose")
	if err != nil {
		b.Fatal(err)
	}
	ks, err := keys.LoadPublic(dir + "/log-key.pub")
	if err != nil {
		b.Fatal(err)
	}
	key := mustKey(b, cose.AlgorithmES384)
	digest := sha512.Sum384([]byte("hello"))
	sig, err := ecdsa.SignASN1(nil, key.Signer.(*ecdsa.PrivateKey), digest[:])
	if err != nil {
		b.Fatal(err)
	}
	pub := key.Signer.Public().(*ecdsa.PublicKey)
	var raw, rc time.Duration
	for b.Loop() {
		t0 := time.Now()
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			b.Fatal("raw verify failed")
		}
		t1 := time.Now()
		r, err := ParseReceipt(rb)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.VerifyInclusion(stmt, ks, LeafAuto); err != nil {
			b.Fatal(err)
		}
		raw, rc = raw+t1.Sub(t0), rc+time.Since(t1)
	}
	b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N), "raw-ns/op")
	b.ReportMetric(float64(rc)/float64(raw), "receipt/raw")
}
