package merklehash

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

func TestMatchesRFC6962(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 33, 127, 128, 129, 1000} {
		leaf := make([]byte, n)
		rand.Read(leaf)
		if got, want := Default.HashLeaf(leaf), rfc6962.DefaultHasher.HashLeaf(leaf); !bytes.Equal(got, want) {
			t.Errorf("HashLeaf(%d bytes) = %x, want %x", n, got, want)
		}
	}
	for _, sizes := range [][2]int{{32, 32}, {31, 32}, {32, 0}, {64, 32}} {
		l, r := make([]byte, sizes[0]), make([]byte, sizes[1])
		rand.Read(l)
		rand.Read(r)
		if got, want := Default.HashChildren(l, r), rfc6962.DefaultHasher.HashChildren(l, r); !bytes.Equal(got, want) {
			t.Errorf("HashChildren(%d, %d bytes) = %x, want %x", sizes[0], sizes[1], got, want)
		}
	}
	if !bytes.Equal(Default.EmptyRoot(), rfc6962.DefaultHasher.EmptyRoot()) || Default.Size() != rfc6962.DefaultHasher.Size() {
		t.Error("EmptyRoot or Size differ from rfc6962")
	}
}

// TestProofs checks inclusion proofs over a small tree verify with this
// hasher and fail when a node is changed.
func TestProofs(t *testing.T) {
	leaves := make([][]byte, 13)
	hashes := make([][]byte, len(leaves))
	for i := range leaves {
		leaves[i] = []byte{byte(i), 1, 2}
		hashes[i] = Default.HashLeaf(leaves[i])
	}
	root := mth(hashes)
	for i := range leaves {
		p := path(hashes, i)
		if err := proof.VerifyInclusion(Default, uint64(i), uint64(len(leaves)), hashes[i], p, root); err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
		if len(p) > 0 {
			p[0] = Default.HashLeaf([]byte("other"))
			if err := proof.VerifyInclusion(Default, uint64(i), uint64(len(leaves)), hashes[i], p, root); err == nil {
				t.Fatalf("leaf %d: a changed proof verified", i)
			}
		}
	}
}

// mth is RFC 6962's Merkle tree hash, computed with the reference hasher.
func mth(h [][]byte) []byte {
	if len(h) == 1 {
		return h[0]
	}
	k := 1
	for k*2 < len(h) {
		k *= 2
	}
	return rfc6962.DefaultHasher.HashChildren(mth(h[:k]), mth(h[k:]))
}

// path is RFC 6962's audit path of leaf m.
func path(h [][]byte, m int) [][]byte {
	if len(h) <= 1 {
		return nil
	}
	k := 1
	for k*2 < len(h) {
		k *= 2
	}
	if m < k {
		return append(path(h[:k], m), mth(h[k:]))
	}
	return append(path(h[k:], m-k), mth(h[:k]))
}

func BenchmarkHashChildren(b *testing.B) {
	l, r := make([]byte, Size), make([]byte, Size)
	b.Run("rfc6962", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rfc6962.DefaultHasher.HashChildren(l, r)
		}
	})
	b.Run("merklehash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Default.HashChildren(l, r)
		}
	})
}
