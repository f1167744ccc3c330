package scitt

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/keys"
)

// IssueReceipt signs an inclusion receipt for the leaf at p.LeafIndex of the
// tree of size p.TreeSize whose root is root. The protected header is
// {1 alg, 4 kid, 395 1, 15 {1 iss, 2 sub, 6 iat}}; the root is detached.
// Service keys should carry their COSE key thumbprint as KID.
func IssueReceipt(ctx context.Context, key *keys.PrivateKey, claims ReceiptClaims, p InclusionProof, root []byte) ([]byte, error) {
	if p.LeafIndex >= p.TreeSize {
		return nil, fmt.Errorf("issue receipt: %w: leaf index %d is not below tree size %d", ErrProofMismatch, p.LeafIndex, p.TreeSize)
	}
	if claims.Leaf != "" {
		if c, err := ParseLeafConvention(claims.Leaf); err != nil || c == LeafAuto {
			return nil, fmt.Errorf("issue receipt: leaf convention %q: want ietf or direct", claims.Leaf)
		}
	}
	enc, err := encodeProof(p.TreeSize, p.LeafIndex, p.Path)
	if err != nil {
		return nil, fmt.Errorf("issue receipt: %w", err)
	}
	return issue(ctx, key, claims, proofInclusion, enc, root)
}

// IssueConsistencyReceipt signs a consistency receipt between tree sizes
// p.TreeSize1 and p.TreeSize2; newRoot is the root at p.TreeSize2.
func IssueConsistencyReceipt(ctx context.Context, key *keys.PrivateKey, claims ReceiptClaims, p ConsistencyProof, newRoot []byte) ([]byte, error) {
	if p.TreeSize1 == 0 || p.TreeSize1 > p.TreeSize2 {
		return nil, fmt.Errorf("issue consistency receipt: %w: sizes %d and %d", ErrProofMismatch, p.TreeSize1, p.TreeSize2)
	}
	enc, err := encodeProof(p.TreeSize1, p.TreeSize2, p.Path)
	if err != nil {
		return nil, fmt.Errorf("issue consistency receipt: %w", err)
	}
	return issue(ctx, key, claims, proofConsistency, enc, newRoot)
}

func encodeProof(a, b uint64, path [][]byte) ([]byte, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if path == nil {
		path = [][]byte{}
	}
	return cosewire.Enc.Marshal([]any{a, b, path})
}

// headLen is the size of a CBOR head with argument n.
func headLen(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}

// checkPath checks a proof path's length and node sizes.
func checkPath(path [][]byte) error {
	if len(path) > maxPathLen {
		return fmt.Errorf("%w: path of %d nodes", ErrProofMismatch, len(path))
	}
	for _, n := range path {
		if len(n) != sha256.Size {
			return fmt.Errorf("%w: path node of %d bytes", ErrProofMismatch, len(n))
		}
	}
	return nil
}

func issue(ctx context.Context, key *keys.PrivateKey, claims ReceiptClaims, proofLabel int64, proofBytes, root []byte) ([]byte, error) {
	protected, sig, err := signReceiptHeader(ctx, key, claims, proofLabel, root)
	if err != nil {
		return nil, err
	}
	return buildReceipt(protected, sig, proofLabel, proofBytes, claims.Checkpoint)
}

// signReceiptHeader builds a receipt's protected header and signs it over
// the detached root. The signature covers nothing else (RFC 9942 §4), so
// one signature serves every receipt with the same header and root.
func signReceiptHeader(ctx context.Context, key *keys.PrivateKey, claims ReceiptClaims, proofLabel int64, root []byte) (protected, sig []byte, err error) {
	if len(root) != sha256.Size {
		return nil, nil, fmt.Errorf("issue receipt: %w: root of %d bytes", ErrProofMismatch, len(root))
	}
	if len(claims.Checkpoint) > MaxCheckpointSize {
		return nil, nil, fmt.Errorf("issue receipt: checkpoint of %d bytes (at most %d)", len(claims.Checkpoint), MaxCheckpointSize)
	}
	cwt := map[int64]any{}
	if claims.Issuer != "" {
		cwt[claimIss] = claims.Issuer
	}
	if claims.Subject != "" {
		cwt[claimSub] = claims.Subject
	}
	if !claims.IssuedAt.IsZero() {
		cwt[claimIat] = claims.IssuedAt.Unix()
	}
	hdr := map[any]any{
		int64(LabelAlg): int64(key.Alg),
		int64(LabelKID): key.KID,
		int64(LabelVDS): int64(VDSRFC9162SHA256),
	}
	if len(cwt) > 0 {
		hdr[int64(LabelCWTClaims)] = cwt
	}
	if claims.Leaf != "" && proofLabel == proofInclusion {
		hdr[LabelLeafConvention] = claims.Leaf
	}
	hdr[LabelReceiptKind] = KindInclusion
	if proofLabel == proofConsistency {
		hdr[LabelReceiptKind] = KindConsistency
	}
	protected, sig, err = signProtected(ctx, key, hdr, root)
	if err != nil {
		return nil, nil, fmt.Errorf("issue receipt: %w", err)
	}
	return protected, sig, nil
}

// buildReceipt assembles a receipt from a signed protected header and the
// unprotected proof (and optional checkpoint).
func buildReceipt(protected, sig []byte, proofLabel int64, proofBytes, checkpoint []byte) ([]byte, error) {
	uh := map[any]any{
		int64(LabelVDP): map[int64]any{proofLabel: []cbor.RawMessage{cosewire.AppendBstr(nil, proofBytes)}},
	}
	if len(checkpoint) > 0 {
		uh[LabelCheckpoint] = checkpoint
	}
	unprotected, err := cosewire.Enc.Marshal(uh)
	if err != nil {
		return nil, fmt.Errorf("issue receipt: %w", err)
	}
	return cosewire.Build(protected, unprotected, nil, sig), nil
}

// TreeSignature is one receipt signature over the root of a tree, shared by
// the inclusion receipts of every entry in that tree: a receipt's signature
// covers only its protected header and the detached root, and the per-entry
// inclusion proof sits in the unprotected header (RFC 9942 §4), so the
// service signs once per checkpoint instead of once per entry. The shared
// header has no per-entry CWT sub; its iat is when the tree was observed, so
// it says "the entry was in the log by iat" (docs/design/transparency.md).
type TreeSignature struct {
	size       uint64
	root       []byte
	protected  []byte
	sig        []byte
	checkpoint []byte
}

// SignTree signs the inclusion-receipt header for the tree of the given size
// and root. claims.Subject must be empty: a shared signature cannot name one
// entry.
func SignTree(ctx context.Context, key *keys.PrivateKey, claims ReceiptClaims, size uint64, root []byte) (*TreeSignature, error) {
	if claims.Subject != "" {
		return nil, fmt.Errorf("sign tree: a signature shared by every entry cannot carry the subject %q", claims.Subject)
	}
	if size == 0 {
		return nil, fmt.Errorf("sign tree: %w: empty tree", ErrProofMismatch)
	}
	if claims.Leaf != "" {
		if c, err := ParseLeafConvention(claims.Leaf); err != nil || c == LeafAuto {
			return nil, fmt.Errorf("sign tree: leaf convention %q: want ietf or direct", claims.Leaf)
		}
	}
	protected, sig, err := signReceiptHeader(ctx, key, claims, proofInclusion, root)
	if err != nil {
		return nil, err
	}
	return &TreeSignature{size: size, root: append([]byte(nil), root...), protected: protected, sig: sig, checkpoint: claims.Checkpoint}, nil
}

// Size is the tree size the signature covers.
func (t *TreeSignature) Size() uint64 { return t.size }

// Receipt returns the inclusion receipt of the leaf at p.LeafIndex; p must
// be a proof against this signature's tree (p.TreeSize equal to Size). The
// caller checks the proof against the root (as for IssueReceipt).
func (t *TreeSignature) Receipt(p InclusionProof) ([]byte, error) {
	if p.TreeSize != t.size {
		return nil, fmt.Errorf("issue receipt: %w: proof for tree size %d, signature for %d", ErrProofMismatch, p.TreeSize, t.size)
	}
	if p.LeafIndex >= p.TreeSize {
		return nil, fmt.Errorf("issue receipt: %w: leaf index %d is not below tree size %d", ErrProofMismatch, p.LeafIndex, p.TreeSize)
	}
	if err := checkPath(p.Path); err != nil {
		return nil, fmt.Errorf("issue receipt: %w", err)
	}
	return t.appendReceipt(p), nil
}

// appendReceipt encodes the receipt directly, as buildReceipt would with
// encodeProof (same bytes: TestTreeSignatureEncoding); it runs once per
// registration, and the general encoder's maps and reflection were ≈ 2 % of
// the service's CPU. The unprotected header is {396: {-1: [bstr .cbor
// [size, index, [path…]]]}, "trustfabric.checkpoint": bstr} in the
// deterministic order (the integer label first).
func (t *TreeSignature) appendReceipt(p InclusionProof) []byte {
	proofLen := 1 + headLen(p.TreeSize) + headLen(p.LeafIndex) + headLen(uint64(len(p.Path))) +
		len(p.Path)*(headLen(sha256.Size)+sha256.Size)
	out := make([]byte, 0, 48+len(t.protected)+proofLen+40+len(t.checkpoint)+len(t.sig))
	out = append(out, 0xd2, 0x84)
	out = cosewire.AppendBstr(out, t.protected)
	n := uint64(1)
	if len(t.checkpoint) > 0 {
		n = 2
	}
	out = cosewire.AppendHead(out, 5, n)
	out = cosewire.AppendHead(out, 0, LabelVDP)
	out = cosewire.AppendHead(out, 5, 1)
	out = cosewire.AppendHead(out, 1, uint64(-1-proofInclusion))
	out = cosewire.AppendHead(out, 4, 1)
	// The proof, a byte string holding [size, index, [path…]].
	out = cosewire.AppendHead(out, 2, uint64(proofLen))
	out = cosewire.AppendHead(out, 4, 3)
	out = cosewire.AppendHead(out, 0, p.TreeSize)
	out = cosewire.AppendHead(out, 0, p.LeafIndex)
	out = cosewire.AppendHead(out, 4, uint64(len(p.Path)))
	for _, node := range p.Path {
		out = cosewire.AppendBstr(out, node)
	}
	if len(t.checkpoint) > 0 {
		out = cosewire.AppendHead(out, 3, uint64(len(LabelCheckpoint)))
		out = append(out, LabelCheckpoint...)
		out = cosewire.AppendBstr(out, t.checkpoint)
	}
	out = append(out, 0xf6) // detached payload
	return cosewire.AppendBstr(out, t.sig)
}
