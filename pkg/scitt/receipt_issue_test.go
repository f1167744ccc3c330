package scitt

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// TestTreeSignatureEncoding: the receipts a TreeSignature encodes directly
// are byte for byte those of the general encoder (encodeProof and
// buildReceipt), for paths from empty to the longest, tree sizes and leaf
// indices at every CBOR integer width, with and without a checkpoint.
func TestTreeSignatureEncoding(t *testing.T) {
	key, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	root := sha256.Sum256([]byte("root"))
	node := func(i int) []byte { h := sha256.Sum256(fmt.Append(nil, i)); return h[:] }
	for _, cp := range [][]byte{nil, []byte("short"), []byte(strings.Repeat("checkpoint line\n", 40))} {
		for _, size := range []uint64{1, 23, 24, 255, 256, 65535, 65536, 1 << 32, 1<<63 + 5} {
			ts, err := SignTree(t.Context(), key, ReceiptClaims{Issuer: "https://ts.example", IssuedAt: time.Unix(1700000000, 0), Checkpoint: cp}, size, root[:])
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{0, 1, 23, 24, maxPathLen} {
				path := make([][]byte, n)
				for i := range path {
					path[i] = node(i)
				}
				p := InclusionProof{TreeSize: size, LeafIndex: size - 1, Path: path}
				got, err := ts.Receipt(p)
				if err != nil {
					t.Fatal(err)
				}
				enc, err := encodeProof(p.TreeSize, p.LeafIndex, p.Path)
				if err != nil {
					t.Fatal(err)
				}
				want, err := buildReceipt(ts.protected, ts.sig, proofInclusion, enc, ts.checkpoint)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("size %d, path of %d, checkpoint of %d bytes:\n got %x\nwant %x", size, n, len(cp), got, want)
				}
			}
		}
	}
	ts, err := SignTree(t.Context(), key, ReceiptClaims{Issuer: "https://ts.example"}, 4, root[:])
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []InclusionProof{
		{TreeSize: 4, LeafIndex: 1, Path: [][]byte{node(0)[:31]}},
		{TreeSize: 4, LeafIndex: 1, Path: make([][]byte, maxPathLen+1)},
		{TreeSize: 5, LeafIndex: 1},
		{TreeSize: 4, LeafIndex: 4},
	} {
		if _, err := ts.Receipt(bad); err == nil {
			t.Errorf("Receipt(%d nodes, size %d, index %d) succeeded", len(bad.Path), bad.TreeSize, bad.LeafIndex)
		}
	}
}

// BenchmarkTreeSignatureReceipt compares, in the same run, the receipt of a
// 20-node path encoded directly with the general encoder's bytes.
func BenchmarkTreeSignatureReceipt(b *testing.B) {
	key, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		b.Fatal(err)
	}
	root := sha256.Sum256([]byte("root"))
	ts, err := SignTree(b.Context(), key, ReceiptClaims{Issuer: "https://ts.example", IssuedAt: time.Now(), Checkpoint: []byte(strings.Repeat("c", 200))}, 1<<20, root[:])
	if err != nil {
		b.Fatal(err)
	}
	path := make([][]byte, 20)
	for i := range path {
		path[i] = root[:]
	}
	p := InclusionProof{TreeSize: 1 << 20, LeafIndex: 12345, Path: path}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ts.Receipt(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			enc, err := encodeProof(p.TreeSize, p.LeafIndex, p.Path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := buildReceipt(ts.protected, ts.sig, proofInclusion, enc, ts.checkpoint); err != nil {
				b.Fatal(err)
			}
		}
	})
}
