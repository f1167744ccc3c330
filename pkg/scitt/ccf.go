package scitt

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/keys"
)

// CCF receipts (vds 2, CCF_LEDGER_SHA256), as Microsoft's scitt-ccf-ledger
// and Azure Code Transparency issue them: draft-ietf-scitt-receipts-ccf-
// profile (§3 inclusion proofs, §4 usage in COSE Receipts) and CCF's receipt
// verification (microsoft/CCF doc/use_apps/verify_tx). The tree is a binary
// Merkle tree with interior nodes SHA-256(left ‖ right), no 0x00/0x01
// prefixes, and leaves
//
//	SHA-256(internal-transaction-hash ‖ SHA-256(internal-evidence) ‖ data-hash)
//
// where data-hash, for SCITT, is SHA-256 of the Signed Statement with its
// unprotected header emptied. Each proof element is [left, hash]: left means
// the sibling is on the left. The root is detached and signed.

// Limits of the CCF profile's CDDL and ours.
const (
	maxCCFEvidence = 1024 // internal-evidence: tstr .size (1..1024)
	maxCCFPath     = 64   // a tree of at most 2^64 transactions
)

// CCFInclusionProof is one CCF inclusion proof (the bstr-wrapped map
// {1: leaf, 2: path} under 396/-1).
type CCFInclusionProof struct {
	// InternalTxHash is the leaf's internal-transaction-hash (32 bytes).
	InternalTxHash []byte
	// InternalEvidence is the leaf's internal-evidence (CCF commit evidence,
	// 1 to 1024 bytes of text).
	InternalEvidence string
	// DataHash is the leaf's data-hash: for SCITT, SHA-256 of the registered
	// statement (32 bytes).
	DataHash []byte
	// Path is the audit path from the leaf up.
	Path []CCFProofElement
}

// CCFProofElement is one step of a CCF audit path.
type CCFProofElement struct {
	// Left reports whether Hash is the left sibling.
	Left bool
	Hash []byte
}

// LeafHash returns the CCF leaf hash.
func (p *CCFInclusionProof) LeafHash() []byte {
	ev := sha256.Sum256([]byte(p.InternalEvidence))
	h := sha256.New()
	h.Write(p.InternalTxHash)
	h.Write(ev[:])
	h.Write(p.DataHash)
	return h.Sum(nil)
}

// Root returns the root the proof gives: the leaf hash folded with the path.
func (p *CCFInclusionProof) Root() []byte {
	acc := p.LeafHash()
	buf := make([]byte, 0, 2*sha256.Size)
	for _, e := range p.Path {
		buf = buf[:0]
		if e.Left {
			buf = append(append(buf, e.Hash...), acc...)
		} else {
			buf = append(append(buf, acc...), e.Hash...)
		}
		sum := sha256.Sum256(buf)
		acc = sum[:]
	}
	return acc
}

func decodeCCFProofs(raw []byte) ([]CCFInclusionProof, error) {
	if raw == nil {
		return nil, fmt.Errorf("%w: the proofs map (396) has no CCF inclusion proof (-1)", ErrMalformed)
	}
	items, err := cosewire.Array(raw)
	if err != nil {
		return nil, fmt.Errorf("CCF inclusion proofs must be an array of byte strings: %w", err)
	}
	if len(items) == 0 || len(items) > maxProofs {
		return nil, fmt.Errorf("%w: %d CCF inclusion proofs (want 1 to %d)", ErrMalformed, len(items), maxProofs)
	}
	out := make([]CCFInclusionProof, 0, len(items))
	for i, it := range items {
		p, err := decodeCCFProof(it)
		if err != nil {
			return nil, fmt.Errorf("CCF inclusion proof %d: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// decodeCCFProof decodes bstr .cbor {1: ccf-leaf, 2: [+ ccf-proof-element]}
// strictly: no other keys, exact sizes.
func decodeCCFProof(item []byte) (CCFInclusionProof, error) {
	var p CCFInclusionProof
	inner, err := cosewire.Bytes(item)
	if err != nil {
		return p, fmt.Errorf("not a byte string: %w", err)
	}
	// A proof that is not a map whose key 1 is an array is of another
	// structure (RFC 9162 proofs are arrays; DataTrails' MMR receipts, which
	// also say vds 2, have {1: index, 2: path}): unsupported, not malformed.
	notCCF := fmt.Errorf("%w: vds 2 receipt whose proof is not a CCF proof {1: [leaf], 2: [path]} (an RFC 9162 or MMR proof under vds 2?)", ErrUnsupportedVDS)
	if cosewire.Major(inner) != 5 {
		return p, notCCF
	}
	m, err := decodeHeader(inner, "CCF inclusion proof")
	if err != nil {
		return p, err
	}
	if l := m.raw(1); l != nil && cosewire.Major(l) != 4 {
		return p, notCCF
	}
	for _, e := range m {
		if k := e.Key; k != int64(1) && k != int64(2) {
			return p, fmt.Errorf("%w: unknown key %v (want only 1 leaf and 2 path)", ErrMalformed, k)
		}
	}
	leaf, err := cosewire.Array(m.raw(1))
	if m.raw(1) == nil || err != nil || len(leaf) != 3 {
		return p, fmt.Errorf("%w: leaf (1) must be [bstr 32, tstr, bstr 32]", ErrMalformed)
	}
	if p.InternalTxHash, err = cosewire.Bytes(leaf[0]); err != nil || len(p.InternalTxHash) != sha256.Size {
		return p, fmt.Errorf("%w: leaf internal-transaction-hash must be a 32-byte string", ErrMalformed)
	}
	if p.InternalEvidence, err = cosewire.Text(leaf[1]); err != nil || len(p.InternalEvidence) == 0 || len(p.InternalEvidence) > maxCCFEvidence {
		return p, fmt.Errorf("%w: leaf internal-evidence must be a text string of 1 to %d bytes", ErrMalformed, maxCCFEvidence)
	}
	if p.DataHash, err = cosewire.Bytes(leaf[2]); err != nil || len(p.DataHash) != sha256.Size {
		return p, fmt.Errorf("%w: leaf data-hash must be a 32-byte string", ErrMalformed)
	}
	path, err := cosewire.Array(m.raw(2))
	if m.raw(2) == nil || err != nil {
		return p, fmt.Errorf("%w: path (2) must be an array of [bool, bstr 32]", ErrMalformed)
	}
	if len(path) == 0 || len(path) > maxCCFPath {
		return p, fmt.Errorf("%w: path of %d elements (want 1 to %d)", ErrMalformed, len(path), maxCCFPath)
	}
	p.Path = make([]CCFProofElement, 0, len(path))
	for j, e := range path {
		parts, err := cosewire.Array(e)
		if err != nil || len(parts) != 2 || len(parts[0]) != 1 || (parts[0][0] != 0xf4 && parts[0][0] != 0xf5) {
			return p, fmt.Errorf("%w: path element %d must be [bool, bstr 32]", ErrMalformed, j)
		}
		h, err := cosewire.Bytes(parts[1])
		if err != nil || len(h) != sha256.Size {
			return p, fmt.Errorf("%w: path element %d hash must be a 32-byte string", ErrMalformed, j)
		}
		p.Path = append(p.Path, CCFProofElement{Left: parts[0][0] == 0xf5, Hash: h})
	}
	return p, nil
}

// VerifyCCFInclusion checks a vds 2 receipt against dataHash (for SCITT,
// SHA-256 of the registered statement; [Receipt.VerifyInclusion] computes
// it): every proof must carry dataHash and give the same root, the root must
// be detached, and the service's signature must cover it.
func (r *Receipt) VerifyCCFInclusion(dataHash []byte, ks keys.Set) (*Result, error) {
	res := &Result{}
	if err := r.checkHeader(res); err != nil {
		return res, err
	}
	return res, r.verifyCCF(res, dataHash, ks)
}

func (r *Receipt) verifyCCF(res *Result, dataHash []byte, ks keys.Set) error {
	if r.ccfErr != nil {
		_, err := res.fail(CheckReceiptProof, r.ccfErr)
		return err
	}
	if r.VDS != VDSCCFLedgerSHA256 || len(r.CCF) == 0 {
		_, err := res.fail(CheckReceiptProof, fmt.Errorf("%w: not a CCF (vds 2) inclusion receipt", ErrProofMismatch))
		return err
	}
	res.pass(CheckReceiptLeaf + ".ccf")
	var root []byte
	for i := range r.CCF {
		p := &r.CCF[i]
		if !bytes.Equal(p.DataHash, dataHash) {
			_, err := res.fail(CheckReceiptProof, fmt.Errorf("%w: CCF proof %d is for data hash %x, the statement's is %x (a receipt for another statement, or a tampered leaf)", ErrProofMismatch, i, p.DataHash, dataHash))
			return err
		}
		pr := p.Root()
		if root == nil {
			root = pr
		} else if !bytes.Equal(root, pr) {
			_, err := res.fail(CheckReceiptProof, fmt.Errorf("%w: CCF proof %d gives another root than proof 0", ErrProofMismatch, i))
			return err
		}
	}
	if !r.msg.Detached {
		if !bytes.Equal(r.msg.Payload, root) {
			_, err := res.fail(CheckReceiptProof, fmt.Errorf("%w: the attached root differs from the root the proof gives", ErrProofMismatch))
			return err
		}
		_, err := res.fail(CheckReceiptProof, fmt.Errorf("%w: the CCF profile requires the root to be detached (payload nil)", ErrMalformed))
		return err
	}
	res.pass(CheckReceiptProof)
	return r.verifyRoot(res, ks, root)
}

// ccfKeyID is the kid scitt-ccf-ledger gives its receipt keys: the
// lowercase hex SHA-256 of the DER SubjectPublicKeyInfo, as text bytes.
func ccfKeyID(k *keys.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(k.Key)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(der)
	return []byte(hex.EncodeToString(sum[:]))
}

// namedBy reports whether the receipt's kid names a key of ks: by the
// package's rule ([keys.Set.Names]) or, for a CCF receipt, by CCF's kid
// convention. An empty kid names every key of a non-empty set.
func (r *Receipt) namedBy(ks keys.Set) bool {
	if ks.Names(r.KID) {
		return true
	}
	if r.VDS != VDSCCFLedgerSHA256 || len(r.KID) != 2*sha256.Size {
		return false
	}
	for _, k := range ks {
		if bytes.Equal(ccfKeyID(k), r.KID) {
			return true
		}
	}
	return false
}
