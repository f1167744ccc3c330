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
	if len(path) > maxPathLen {
		return nil, fmt.Errorf("%w: path of %d nodes", ErrProofMismatch, len(path))
	}
	for _, n := range path {
		if len(n) != sha256.Size {
			return nil, fmt.Errorf("%w: path node of %d bytes", ErrProofMismatch, len(n))
		}
	}
	if path == nil {
		path = [][]byte{}
	}
	return cosewire.Enc.Marshal([]any{a, b, path})
}

func issue(ctx context.Context, key *keys.PrivateKey, claims ReceiptClaims, proofLabel int64, proofBytes, root []byte) ([]byte, error) {
	if len(root) != sha256.Size {
		return nil, fmt.Errorf("issue receipt: %w: root of %d bytes", ErrProofMismatch, len(root))
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
	protected, sig, err := signProtected(ctx, key, hdr, root)
	if err != nil {
		return nil, fmt.Errorf("issue receipt: %w", err)
	}
	uh := map[any]any{
		int64(LabelVDP): map[int64]any{proofLabel: []cbor.RawMessage{cosewire.AppendBstr(nil, proofBytes)}},
	}
	if len(claims.Checkpoint) > 0 {
		if len(claims.Checkpoint) > MaxCheckpointSize {
			return nil, fmt.Errorf("issue receipt: checkpoint of %d bytes (at most %d)", len(claims.Checkpoint), MaxCheckpointSize)
		}
		uh[LabelCheckpoint] = claims.Checkpoint
	}
	unprotected, err := cosewire.Enc.Marshal(uh)
	if err != nil {
		return nil, fmt.Errorf("issue receipt: %w", err)
	}
	return cosewire.Build(protected, unprotected, nil, sig), nil
}
