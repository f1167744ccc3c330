package scitt_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// An issuer signs an in-toto statement as a SCITT Signed Statement (a COSE
// hash envelope: the payload is its SHA-256), and a verifier checks the
// signature with the issuer's public key and that the statement covers the
// preimage it was given.
func ExampleSignStatement() {
	ctx := context.Background()
	issuer, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		panic(err)
	}
	provenance := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`)
	stmt, err := scitt.SignStatement(ctx, issuer, scitt.Claims{
		Issuer:   "https://ci.example.org/acme/widgets",
		Subject:  "oci://registry.example.org/acme/widgets@sha256:" + fmt.Sprintf("%x", sha256.Sum256([]byte("image"))),
		IssuedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}, provenance)
	if err != nil {
		panic(err)
	}

	s, err := scitt.ParseStatement(stmt)
	if err != nil {
		panic(err)
	}
	res, err := s.Verify(keys.Set{issuer.Public()}, scitt.WithPreimage(provenance))
	if err != nil {
		panic(err)
	}
	fmt.Println("issuer:", s.Issuer)
	fmt.Println("hash envelope:", s.IsHashEnvelope())
	fmt.Println("valid:", res.OK())

	// Another preimage is refused.
	_, err = s.Verify(keys.Set{issuer.Public()}, scitt.WithPreimage([]byte("{}")))
	fmt.Println("other preimage:", errors.Is(err, scitt.ErrPayloadMismatch))
	// Output:
	// issuer: https://ci.example.org/acme/widgets
	// hash envelope: true
	// valid: true
	// other preimage: true
}

// A Transparency Service registers a statement in its log and returns a COSE
// Receipt: an inclusion proof signed with the service's key. A verifier who
// pinned that key checks the receipt against the statement, then the whole
// Transparent Statement (the statement with its receipts in the unprotected
// header) with the issuer's key too.
func ExampleReceipt_VerifyInclusion() {
	ctx := context.Background()
	issuer, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		panic(err)
	}
	service, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		panic(err)
	}
	stmt, err := scitt.SignStatement(ctx, issuer, scitt.Claims{Issuer: "https://ci.example.org", Subject: "sha256:00"}, []byte("payload"))
	if err != nil {
		panic(err)
	}

	// The service side: the statement is the only leaf of a one-entry log,
	// so the root is the leaf hash and the proof path is empty.
	root := scitt.LeafHash(stmt, scitt.LeafIETF)
	receipt, err := scitt.IssueReceipt(ctx, service, scitt.ReceiptClaims{Issuer: "https://ts.example.org", IssuedAt: time.Unix(1772366460, 0)},
		scitt.InclusionProof{TreeSize: 1, LeafIndex: 0}, root)
	if err != nil {
		panic(err)
	}

	// The verifier side.
	r, err := scitt.ParseReceipt(receipt)
	if err != nil {
		panic(err)
	}
	res, err := r.VerifyInclusion(stmt, keys.Set{service.Public()}, scitt.LeafIETF)
	fmt.Println("receipt valid:", err == nil && res.OK())
	_, err = r.VerifyInclusion(stmt, keys.Set{issuer.Public()}, scitt.LeafIETF)
	fmt.Println("under another key:", errors.Is(err, scitt.ErrKeyNotFound))

	transparent, err := scitt.AddReceipt(stmt, receipt)
	if err != nil {
		panic(err)
	}
	res, err = scitt.VerifyTransparentStatement(transparent, keys.Set{service.Public()}, scitt.LeafIETF, keys.Set{issuer.Public()})
	fmt.Println("transparent statement valid:", err == nil && res.OK())
	// Output:
	// receipt valid: true
	// under another key: true
	// transparent statement valid: true
}
