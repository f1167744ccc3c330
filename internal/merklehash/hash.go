// Package merklehash is RFC 6962's Merkle tree hasher (SHA-256, 0x00 leaf and
// 0x01 node prefixes) without a hash.Hash per call: the interior-node hash is
// one sha256.Sum256 over a stack buffer. Receipts are built and checked on
// every registration (about 2 log2(size) node hashes each), and
// rfc6962.DefaultHasher allocates a digest per node, which made hashing the
// largest source of garbage on the registration path
// (docs/benchmarks.md, issue 12). Results are identical to
// rfc6962.DefaultHasher's (tested).
package merklehash

import (
	"crypto/sha256"

	"github.com/transparency-dev/merkle/rfc6962"
)

// Size is the size of a hash.
const Size = sha256.Size

// Hasher implements merkle.LogHasher (and proof verification's hasher) with
// RFC 6962's domain separation.
type Hasher struct{}

// Default is the hasher to use.
var Default Hasher

// leafStack is the largest leaf hashed in a stack buffer; entries are 32
// bytes.
const leafStack = 128

// EmptyRoot returns the root of an empty tree.
func (Hasher) EmptyRoot() []byte { return rfc6962.DefaultHasher.EmptyRoot() }

// HashLeaf returns the hash of a leaf: SHA-256(0x00 || leaf).
func (Hasher) HashLeaf(leaf []byte) []byte {
	if len(leaf) > leafStack {
		return rfc6962.DefaultHasher.HashLeaf(leaf)
	}
	var b [1 + leafStack]byte
	b[0] = rfc6962.RFC6962LeafHashPrefix
	n := copy(b[1:], leaf)
	h := sha256.Sum256(b[:1+n])
	return h[:]
}

// HashChildren returns the hash of an interior node: SHA-256(0x01 || l || r).
// Children of another size than Size are hashed the general way.
func (Hasher) HashChildren(l, r []byte) []byte {
	if len(l) != Size || len(r) != Size {
		return rfc6962.DefaultHasher.HashChildren(l, r)
	}
	var b [1 + 2*Size]byte
	b[0] = rfc6962.RFC6962NodeHashPrefix
	copy(b[1:], l)
	copy(b[1+Size:], r)
	h := sha256.Sum256(b[:])
	return h[:]
}

// Size returns the size of a hash.
func (Hasher) Size() int { return Size }
