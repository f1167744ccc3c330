package scitt

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/internal/merklehash"
	"github.com/trustfabric/trustfabric/pkg/keys"
)

// MaxReceiptSize bounds the receipts this package parses.
const MaxReceiptSize = 64 << 10

// VDS values (RFC 9942 §6, IANA "COSE Verifiable Data Structure Algorithms").
const (
	// VDSRFC9162SHA256 is the RFC 9162 SHA-256 binary Merkle tree, the
	// structure of Trustfabric's log.
	VDSRFC9162SHA256 = 1
	// VDSCCFLedgerSHA256 is the CCF ledger (draft-ietf-scitt-receipts-ccf-
	// profile), the structure of Microsoft's scitt-ccf-ledger and Azure Code
	// Transparency; its inclusion receipts are verified (ccf.go).
	VDSCCFLedgerSHA256 = 2
)

// LabelLeafConvention is the protected header label under which Trustfabric
// receipts name the leaf convention of their log ("ietf" or "direct"), so a
// verifier need not be told it (docs/design/scitt.md). It is a text label,
// as COSE allows (RFC 9052 §3), and not critical: verifiers that do not know
// it ignore it.
const LabelLeafConvention = "trustfabric.leaf"

// LabelReceiptKind is the protected header label under which Trustfabric
// receipts say which proof their signature stands for: [KindInclusion] or
// [KindConsistency]. A consistency receipt's signature covers the newer
// tree's root, which is also the root of every inclusion proof in that tree;
// without this label, a consistency receipt with an inclusion proof grafted
// into its unprotected header would verify as an inclusion receipt, with the
// consistency receipt's sub and iat. Verifiers refuse a receipt whose kind is
// not the one required (see docs/design/scitt.md); receipts that name no kind
// (other services, older Trustfabric releases) are judged as before.
const LabelReceiptKind = "trustfabric.kind"

// Values of [LabelReceiptKind].
const (
	KindInclusion   = "inclusion"
	KindConsistency = "consistency"
)

// Proof labels inside the vdp map (396) for vds 1.
const (
	proofInclusion   = -1
	proofConsistency = -2
	maxProofs        = 16
	maxPathLen       = 64
)

// ReceiptClaims are the CWT claims of a receipt: the Transparency Service
// identifier, the entry id and the registration time.
type ReceiptClaims struct {
	Issuer   string
	Subject  string
	IssuedAt time.Time
	// Leaf, when set ("ietf" or "direct"), is written under
	// [LabelLeafConvention] in the protected header of inclusion receipts.
	Leaf string
	// Checkpoint, when set, is the signed checkpoint note (C2SP
	// tlog-checkpoint, with witness cosignatures) the receipt is anchored
	// in, written under [LabelCheckpoint] in the unprotected header.
	Checkpoint []byte
}

// InclusionProof is an RFC 9162 inclusion proof (RFC 9942 §5.2).
type InclusionProof struct {
	TreeSize  uint64
	LeafIndex uint64
	Path      [][]byte
}

// ConsistencyProof is an RFC 9162 consistency proof (RFC 9942 §5.3).
type ConsistencyProof struct {
	TreeSize1 uint64
	TreeSize2 uint64
	Path      [][]byte
}

// LeafConvention says which bytes a log leaf stands for; it is a property of
// the Transparency Service that issued the receipt.
type LeafConvention int

const (
	// LeafIETF: entry = SHA-256(statement with unprotected header {}),
	// leaf = SHA-256(0x00 ‖ entry). Trustfabric's log and the IETF SCITT
	// example vectors use it.
	LeafIETF LeafConvention = iota
	// LeafDirect: leaf = SHA-256(0x00 ‖ statement with unprotected header
	// {}), as transmute's implementation does.
	LeafDirect
	// LeafAuto verifies under the convention the receipt names
	// ([LabelLeafConvention]); a receipt that names none is tried under
	// LeafIETF, then LeafDirect (sound: an IETF entry is a 32-byte hash, a
	// direct entry a whole COSE_Sign1, so one leaf cannot stand for the same
	// statement under both). vds 2 receipts always use the CCF leaf.
	LeafAuto
)

// ParseLeafConvention reads "ietf", "direct" or "auto"; "" is "ietf".
func ParseLeafConvention(s string) (LeafConvention, error) {
	switch s {
	case "", "ietf":
		return LeafIETF, nil
	case "direct":
		return LeafDirect, nil
	case "auto":
		return LeafAuto, nil
	}
	return 0, fmt.Errorf("unknown leaf convention %q (want ietf, direct or auto)", s)
}

func (c LeafConvention) String() string {
	switch c {
	case LeafDirect:
		return "direct"
	case LeafAuto:
		return "auto"
	}
	return "ietf"
}

// LeafHash returns the RFC 9162 leaf hash of a registered statement (one
// whose unprotected header is already {}) under convention c (LeafAuto
// hashes as LeafIETF).
func LeafHash(registered []byte, c LeafConvention) []byte {
	h := merklehash.Default
	if c == LeafDirect {
		return h.HashLeaf(registered)
	}
	entry := sha256.Sum256(registered)
	return h.HashLeaf(entry[:])
}

// Receipt is a parsed COSE Receipt.
type Receipt struct {
	// Raw is the receipt exactly as received.
	Raw []byte
	// Alg is the signature algorithm; KID the kid (nil when absent).
	Alg cose.Algorithm
	KID []byte
	// VDS is the verifiable data structure, read from the protected header
	// only.
	VDS int64
	// Issuer, Subject and IssuedAt are the receipt's CWT claims, when present.
	Issuer, Subject string
	IssuedAt        time.Time
	// Leaf is the leaf convention the receipt names under
	// [LabelLeafConvention] ("" when it names none).
	Leaf string
	// Kind is the receipt kind named under [LabelReceiptKind] ("" when it
	// names none).
	Kind string
	// Inclusion and Consistency are the proofs of a vds 1 receipt.
	Inclusion   []InclusionProof
	Consistency []ConsistencyProof
	// CCF holds the inclusion proofs of a vds 2 (CCF_LEDGER_SHA256) receipt.
	CCF []CCFInclusionProof
	// Checkpoint is the signed checkpoint note under [LabelCheckpoint]
	// (unprotected, not covered by the receipt's signature: it carries its
	// own), nil when absent. See [VerifyCosigned].
	Checkpoint []byte

	msg    *cosewire.Sign1
	algErr error
	ccfErr error // why the vds 2 proofs are not CCF proofs
}

// ParseReceipt parses a receipt strictly (see [ParseStatement]). The vds
// must be in the protected header; proofs are decoded for vds 1 (every node
// 32 bytes) and vds 2 (CCF, see [CCFInclusionProof]).
func ParseReceipt(b []byte) (*Receipt, error) {
	m, err := cosewire.Parse(b, MaxReceiptSize)
	if err != nil {
		return nil, fmt.Errorf("parse receipt: %w", err)
	}
	r, err := receiptFrom(m)
	if err != nil {
		return nil, fmt.Errorf("parse receipt: %w", err)
	}
	return r, nil
}

func receiptFrom(m *cosewire.Sign1) (*Receipt, error) {
	r := &Receipt{Raw: m.Raw, msg: m}
	p, err := decodeHeader(m.Protected, "protected")
	if err != nil {
		return nil, err
	}
	uh, err := decodeHeader(m.Unprotected, "unprotected")
	if err != nil {
		return nil, err
	}
	if err := checkCrit(p, uh, receiptCritLabels); err != nil {
		return nil, err
	}
	if alg, ok, err := p.int(LabelAlg, "alg"); err != nil {
		if cosewire.Major(p.raw(LabelAlg)) != 3 {
			return nil, err
		}
		r.algErr = fmt.Errorf("%w: text algorithm names are not supported", ErrUnsupportedAlgorithm)
	} else if ok {
		r.Alg = cose.Algorithm(alg)
	}
	if r.KID, _, err = p.bstr(LabelKID, "kid"); err != nil {
		return nil, err
	}
	vds, ok, err := p.int(LabelVDS, "vds")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: no vds (395) in the protected header", ErrMalformed)
	}
	r.VDS = vds
	c, err := p.cwt()
	if err != nil {
		return nil, err
	}
	r.Issuer, r.Subject, r.IssuedAt = c.iss, c.sub, c.iat
	if r.Leaf, _, err = p.tstr(LabelLeafConvention, "leaf convention"); err != nil {
		return nil, err
	}
	if r.Kind, _, err = p.tstr(LabelReceiptKind, "receipt kind"); err != nil {
		return nil, err
	}
	if vds != VDSRFC9162SHA256 && vds != VDSCCFLedgerSHA256 {
		return r, nil // proofs of other structures are not decoded
	}
	if r.Checkpoint, _, err = uh.bstr(LabelCheckpoint, "checkpoint"); err != nil {
		return nil, err
	}
	if len(r.Checkpoint) > MaxCheckpointSize {
		return nil, fmt.Errorf("%w: checkpoint (%s) of %d bytes (at most %d)", ErrMalformed, LabelCheckpoint, len(r.Checkpoint), MaxCheckpointSize)
	}
	u := uh
	raw := u.raw(LabelVDP)
	if raw == nil || cosewire.Major(raw) != 5 {
		return nil, fmt.Errorf("%w: no proofs map (396) in the unprotected header", ErrMalformed)
	}
	vdp, err := decodeHeader(raw, "proofs (396)")
	if err != nil {
		return nil, err
	}
	if vds == VDSCCFLedgerSHA256 {
		// Proofs that break the CCF profile are reported at verification,
		// so that inspect can still show the receipt: vds 2 is also what
		// DataTrails' MMR receipts carry.
		r.CCF, r.ccfErr = decodeCCFProofs(vdp.raw(proofInclusion))
		return r, nil
	}
	incl, err := decodeProofs(vdp.raw(proofInclusion), "inclusion")
	if err != nil {
		return nil, err
	}
	for _, pr := range incl {
		r.Inclusion = append(r.Inclusion, InclusionProof{TreeSize: pr.a, LeafIndex: pr.b, Path: pr.path})
	}
	cons, err := decodeProofs(vdp.raw(proofConsistency), "consistency")
	if err != nil {
		return nil, err
	}
	for _, pr := range cons {
		r.Consistency = append(r.Consistency, ConsistencyProof{TreeSize1: pr.a, TreeSize2: pr.b, Path: pr.path})
	}
	if len(r.Inclusion) == 0 && len(r.Consistency) == 0 {
		return nil, fmt.Errorf("%w: the proofs map (396) has no inclusion (-1) or consistency (-2) proof", ErrMalformed)
	}
	return r, nil
}

type rawProof struct {
	a, b uint64
	path [][]byte
}

func decodeProofs(raw []byte, kind string) ([]rawProof, error) {
	if raw == nil {
		return nil, nil
	}
	items, err := cosewire.Array(raw)
	if err != nil {
		return nil, fmt.Errorf("%s proofs must be an array of byte strings: %w", kind, err)
	}
	if len(items) == 0 || len(items) > maxProofs {
		return nil, fmt.Errorf("%w: %d %s proofs (want 1 to %d)", ErrMalformed, len(items), kind, maxProofs)
	}
	out := make([]rawProof, 0, len(items))
	for i, it := range items {
		inner, err := cosewire.Bytes(it)
		if err != nil {
			return nil, fmt.Errorf("%s proof %d is not a byte string: %w", kind, i, err)
		}
		parts, err := cosewire.Array(inner)
		if err != nil || len(parts) != 3 {
			return nil, fmt.Errorf("%w: %s proof %d must be [uint, uint, [bstr…]]", ErrMalformed, kind, i)
		}
		var pr rawProof
		var errA, errB error
		pr.a, errA = cosewire.Uint(parts[0])
		pr.b, errB = cosewire.Uint(parts[1])
		nodes, errC := cosewire.Array(parts[2])
		if errA != nil || errB != nil || errC != nil {
			return nil, fmt.Errorf("%w: %s proof %d must be [uint, uint, [bstr…]]", ErrMalformed, kind, i)
		}
		if len(nodes) > maxPathLen {
			return nil, fmt.Errorf("%w: %s proof %d path has %d nodes (at most %d)", ErrMalformed, kind, i, len(nodes), maxPathLen)
		}
		pr.path = make([][]byte, 0, len(nodes))
		for j, n := range nodes {
			h, err := cosewire.Bytes(n)
			if err != nil || len(h) != sha256.Size {
				return nil, fmt.Errorf("%w: %s proof %d node %d is not a 32-byte hash", ErrMalformed, kind, i, j)
			}
			pr.path = append(pr.path, h)
		}
		out = append(out, pr)
	}
	return out, nil
}

// Check names reported by receipt verification.
const (
	CheckReceiptVDS       = "receipt.vds"
	CheckReceiptAlgorithm = "receipt.algorithm"
	CheckReceiptProof     = "receipt.proof"
	CheckReceiptSignature = "receipt.signature"
	// CheckReceiptKind: the receipt's signed kind ([LabelReceiptKind]) is
	// the one required.
	CheckReceiptKind = "receipt.kind"
	// CheckReceiptLeaf passes with the convention appended
	// ("receipt.leaf.ietf", "receipt.leaf.direct", "receipt.leaf.ccf").
	CheckReceiptLeaf = "receipt.leaf"
)

// checkKind fails a receipt that names a kind other than want.
func (r *Receipt) checkKind(res *Result, want string) error {
	if r.Kind != "" && r.Kind != want {
		_, err := res.fail(CheckReceiptKind, fmt.Errorf("%w: %w: the receipt's signature is for a %s proof (protected header %q), not an %s proof, whatever proofs its unprotected header carries",
			ErrWrongReceiptKind, ErrProofMismatch, r.Kind, LabelReceiptKind, want))
		return err
	}
	res.pass(CheckReceiptKind)
	return nil
}

func (r *Receipt) checkHeader(res *Result) error {
	if r.VDS != VDSRFC9162SHA256 && r.VDS != VDSCCFLedgerSHA256 {
		_, err := res.fail(CheckReceiptVDS, fmt.Errorf("%w: vds %d is unsupported; 1 (RFC9162_SHA256) and 2 (CCF_LEDGER_SHA256) are implemented", ErrUnsupportedVDS, r.VDS))
		return err
	}
	if r.VDS == VDSCCFLedgerSHA256 && errors.Is(r.ccfErr, ErrUnsupportedVDS) {
		_, err := res.fail(CheckReceiptVDS, r.ccfErr)
		return err
	}
	res.pass(CheckReceiptVDS)
	switch {
	case r.algErr != nil:
		_, err := res.fail(CheckReceiptAlgorithm, r.algErr)
		return err
	case !keys.StatementAllowed(r.Alg):
		_, err := res.fail(CheckReceiptAlgorithm, fmt.Errorf("%w: %v", ErrUnsupportedAlgorithm, r.Alg))
		return err
	}
	res.pass(CheckReceiptAlgorithm)
	return nil
}

// verifyRoot checks the receipt's signature over the recomputed root. When
// the receipt's kid names none of the given keys and none verifies, the
// failure is [ErrKeyNotFound] (a receipt from another service, or the wrong
// key). Otherwise the key is the service's, so a signature that does not
// cover the recomputed root is a [ErrProofMismatch]: a tampered path, a wrong
// index or size, or a receipt for another statement.
func (r *Receipt) verifyRoot(res *Result, ks keys.Set, root []byte) error {
	if r.msg.Payload != nil && !bytes.Equal(r.msg.Payload, root) {
		_, err := res.fail(CheckReceiptProof, fmt.Errorf("%w: the attached root differs from the root the proof gives", ErrProofMismatch))
		return err
	}
	_, err := ks.Verify(r.KID, r.Alg, cosewire.SigStructure(r.msg.Protected, root), r.msg.Signature)
	if err == nil {
		res.pass(CheckReceiptSignature)
		return nil
	}
	if errors.Is(err, ErrBadSignature) {
		named := r.namedBy(ks)
		if named {
			err = fmt.Errorf("%w: the service's signature does not cover the root recomputed from the proof (tampered path, wrong index or size, or another statement): %w", ErrProofMismatch, err)
		} else {
			err = fmt.Errorf("%w: no given key has kid %x, and none verifies the receipt: %w", ErrKeyNotFound, r.KID, err)
		}
	}
	_, err = res.fail(CheckReceiptSignature, err)
	return err
}

// VerifyInclusion checks that the receipt proves statement (a Signed or
// Transparent Statement; its unprotected header is ignored) is in the log:
// the vds from the protected header (1 or 2), an allowed algorithm, then the
// structure's proof and the signature over the recomputed root with the
// given service keys. For vds 1: leaf_index < tree_size and the exact path
// length for (tree_size, leaf_index), with the leaf of the given convention
// (see [LeafAuto]); a receipt that names a convention other than an explicit
// leaf fails with [ErrProofMismatch]. For vds 2 the leaf is the CCF profile's
// and leaf is ignored (see [Receipt.VerifyCCFInclusion]).
func (r *Receipt) VerifyInclusion(statement []byte, ks keys.Set, leaf LeafConvention) (*Result, error) {
	res := &Result{}
	if err := r.checkHeader(res); err != nil {
		return res, err
	}
	m, err := cosewire.Parse(statement, MaxStatementSize)
	if err != nil {
		return res.fail(CheckReceiptProof, fmt.Errorf("statement: %w", err))
	}
	if r.VDS == VDSCCFLedgerSHA256 {
		h := sha256.Sum256(m.Stripped())
		return res, r.verifyCCF(res, h[:], ks)
	}
	if err := r.checkKind(res, KindInclusion); err != nil {
		return res, err
	}
	if len(r.Inclusion) == 0 {
		return res.fail(CheckReceiptProof, fmt.Errorf("%w: the receipt has no inclusion proof", ErrProofMismatch))
	}
	convs, err := r.conventions(leaf)
	if err != nil {
		return res.fail(CheckReceiptLeaf, err)
	}
	var firstRes *Result
	var firstErr error
	for _, c := range convs {
		try := &Result{Checks: append([]Check(nil), res.Checks...)}
		try.pass(CheckReceiptLeaf + "." + c.String())
		err := r.verifyInclusion(try, LeafHash(m.Stripped(), c), ks)
		if err == nil || !errors.Is(err, ErrProofMismatch) {
			return try, err
		}
		if firstRes == nil {
			firstRes, firstErr = try, err
		}
	}
	return firstRes, firstErr
}

// conventions lists the leaf conventions to verify a vds 1 receipt under.
func (r *Receipt) conventions(leaf LeafConvention) ([]LeafConvention, error) {
	var named LeafConvention
	if r.Leaf != "" {
		c, err := ParseLeafConvention(r.Leaf)
		if err != nil || c == LeafAuto {
			return nil, fmt.Errorf("%w: the receipt names leaf convention %q, which this verifier does not implement (ietf, direct)", ErrUnsupportedVDS, r.Leaf)
		}
		named = c
	}
	switch {
	case leaf != LeafAuto && r.Leaf != "" && named != leaf:
		return nil, fmt.Errorf("%w: the receipt names leaf convention %s, but %s was asked for", ErrProofMismatch, named, leaf)
	case leaf != LeafAuto:
		return []LeafConvention{leaf}, nil
	case r.Leaf != "":
		return []LeafConvention{named}, nil
	}
	return []LeafConvention{LeafIETF, LeafDirect}, nil
}

// VerifyInclusionOfLeaf is VerifyInclusion given the RFC 9162 leaf hash
// directly (vds 1 only).
func (r *Receipt) VerifyInclusionOfLeaf(leafHash []byte, ks keys.Set) (*Result, error) {
	res := &Result{}
	if err := r.checkHeader(res); err != nil {
		return res, err
	}
	if r.VDS != VDSRFC9162SHA256 {
		return res.fail(CheckReceiptVDS, fmt.Errorf("%w: a leaf hash can only be checked against a vds 1 receipt", ErrUnsupportedVDS))
	}
	if err := r.checkKind(res, KindInclusion); err != nil {
		return res, err
	}
	if len(r.Inclusion) == 0 {
		return res.fail(CheckReceiptProof, fmt.Errorf("%w: the receipt has no inclusion proof", ErrProofMismatch))
	}
	return res, r.verifyInclusion(res, leafHash, ks)
}

func (r *Receipt) verifyInclusion(res *Result, leafHash []byte, ks keys.Set) error {
	p := r.Inclusion[0]
	if p.LeafIndex >= p.TreeSize {
		_, err := res.fail(CheckReceiptProof, fmt.Errorf("%w: leaf index %d is not below tree size %d", ErrProofMismatch, p.LeafIndex, p.TreeSize))
		return err
	}
	root, err := proof.RootFromInclusionProof(merklehash.Default, p.LeafIndex, p.TreeSize, leafHash, p.Path)
	if err != nil {
		_, err = res.fail(CheckReceiptProof, fmt.Errorf("%w: %w", ErrProofMismatch, err))
		return err
	}
	res.pass(CheckReceiptProof)
	return r.verifyRoot(res, ks, root)
}

// Root returns the root an inclusion receipt commits to for leafHash,
// without checking the signature.
func (r *Receipt) Root(leafHash []byte) ([]byte, error) {
	if len(r.Inclusion) == 0 {
		return nil, fmt.Errorf("%w: no inclusion proof", ErrProofMismatch)
	}
	p := r.Inclusion[0]
	root, err := proof.RootFromInclusionProof(merklehash.Default, p.LeafIndex, p.TreeSize, leafHash, p.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProofMismatch, err)
	}
	return root, nil
}

// VerifyConsistency checks a consistency receipt against oldRoot, the
// trusted root at the receipt's first tree size, and returns the root at the
// second size, which the service's signature covers.
func (r *Receipt) VerifyConsistency(oldRoot []byte, ks keys.Set) ([]byte, error) {
	res := &Result{}
	if err := r.checkHeader(res); err != nil {
		return nil, err
	}
	if r.VDS != VDSRFC9162SHA256 {
		_, err := res.fail(CheckReceiptVDS, fmt.Errorf("%w: consistency receipts are implemented for vds 1 only", ErrUnsupportedVDS))
		return nil, err
	}
	if err := r.checkKind(res, KindConsistency); err != nil {
		return nil, err
	}
	if len(r.Consistency) == 0 {
		_, err := res.fail(CheckReceiptProof, fmt.Errorf("%w: the receipt has no consistency proof", ErrProofMismatch))
		return nil, err
	}
	p := r.Consistency[0]
	newRoot, err := consistencyRoot(p, oldRoot)
	if err != nil {
		_, err = res.fail(CheckReceiptProof, err)
		return nil, err
	}
	res.pass(CheckReceiptProof)
	if err := r.verifyRoot(res, ks, newRoot); err != nil {
		return nil, err
	}
	return newRoot, nil
}

// consistencyRoot recomputes the root at p.TreeSize2 from oldRoot and the
// proof. transparency-dev/merkle verifies a consistency proof against both
// roots and reports the root it computed when the second one differs; we
// give it a second root that cannot match and read the computed one back.
func consistencyRoot(p ConsistencyProof, oldRoot []byte) ([]byte, error) {
	switch {
	case len(oldRoot) != sha256.Size:
		return nil, fmt.Errorf("%w: old root of %d bytes", ErrProofMismatch, len(oldRoot))
	case p.TreeSize1 == 0 || p.TreeSize1 > p.TreeSize2:
		return nil, fmt.Errorf("%w: tree sizes %d and %d", ErrProofMismatch, p.TreeSize1, p.TreeSize2)
	case p.TreeSize1 == p.TreeSize2:
		if len(p.Path) != 0 {
			return nil, fmt.Errorf("%w: equal tree sizes need an empty path", ErrProofMismatch)
		}
		return oldRoot, nil
	}
	probe := bytes.Clone(oldRoot)
	probe[0] ^= 0xff
	err := proof.VerifyConsistency(merklehash.Default, p.TreeSize1, p.TreeSize2, p.Path, oldRoot, probe)
	var mm proof.RootMismatchError
	if errors.As(err, &mm) && bytes.Equal(mm.ExpectedRoot, probe) {
		return mm.CalculatedRoot, nil
	}
	if err == nil {
		return probe, nil // unreachable: the probe never equals a computed root by chance
	}
	return nil, fmt.Errorf("%w: %w", ErrProofMismatch, err)
}
