package scitt

import (
	"bytes"
	"errors"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// TestReceiptCarriesCheckpoint: the checkpoint under LabelCheckpoint
// round-trips, leaves the receipt valid for RFC 9942 verification, and can
// be replaced without touching the signed bytes.
func TestReceiptCarriesCheckpoint(t *testing.T) {
	key := serviceKey(t)
	tr := testonly.New(rfc6962.DefaultHasher)
	for i := range 5 {
		tr.AppendData([]byte{byte(i)})
	}
	path, err := tr.InclusionProof(2, 5)
	if err != nil {
		t.Fatal(err)
	}
	cp := []byte("log.test\n5\nroot\n\n— log.test sig\n")
	raw, err := IssueReceipt(ctx, key, ReceiptClaims{Issuer: "https://ts", Checkpoint: cp}, InclusionProof{TreeSize: 5, LeafIndex: 2, Path: path}, tr.Hash())
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseReceipt(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Checkpoint, cp) {
		t.Fatalf("checkpoint %q", r.Checkpoint)
	}
	leaf := rfc6962.DefaultHasher.HashLeaf([]byte{2})
	if _, err := r.VerifyInclusionOfLeaf(leaf, keys.Set{key.Public()}); err != nil {
		t.Fatalf("a receipt carrying a checkpoint does not verify: %v", err)
	}
	other := []byte("log.test\n5\nroot\n\n— log.test sig\n— w.test more\n")
	raw2, err := r.WithCheckpoint(other)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := ParseReceipt(raw2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r2.Checkpoint, other) || !bytes.Equal(r2.msg.Signature, r.msg.Signature) || !bytes.Equal(r2.msg.Protected, r.msg.Protected) {
		t.Fatal("WithCheckpoint changed more than the checkpoint")
	}
	if _, err := r2.VerifyInclusionOfLeaf(leaf, keys.Set{key.Public()}); err != nil {
		t.Fatal(err)
	}
	// Without one: no member at all (receipts of services without witnesses
	// are byte-for-byte what they were).
	raw3, err := IssueReceipt(ctx, key, ReceiptClaims{Issuer: "https://ts"}, InclusionProof{TreeSize: 5, LeafIndex: 2, Path: path}, tr.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw3, []byte(LabelCheckpoint)) {
		t.Fatal("a receipt without a checkpoint names the label")
	}
	if _, err := IssueReceipt(ctx, key, ReceiptClaims{Checkpoint: make([]byte, MaxCheckpointSize+1)}, InclusionProof{TreeSize: 5, LeafIndex: 2, Path: path}, tr.Hash()); err == nil {
		t.Fatal("an oversized checkpoint was accepted")
	}
	if _, err := VerifyCosigned(nil, 5, tr.Hash(), Witnesses{}); !errors.Is(err, ErrWitness) {
		t.Fatalf("no checkpoint: %v", err)
	}
}
