package scitt

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/keys"
)

var updateCCF = flag.Bool("update-ccf", false, "rewrite testdata/ccf-vds2 from the shared valid-ccf-vds2 vector")

const ccfVectorsDir = "testdata/ccf-vds2"

// TestCCFReceipt: Microsoft's receipt (scitt-ccf-ledger 7.0.6, ES384) verifies
// detached and inside a Transparent Statement, under every leaf setting (vds
// 2 fixes the leaf), and its kid is CCF's (hex SHA-256 of the key's SPKI).
func TestCCFReceipt(t *testing.T) {
	v := loadVector(t, filepath.Join(vectorsDir(t), "valid-ccf-vds2"))
	r, err := ParseReceipt(v.receipt)
	if err != nil {
		t.Fatal(err)
	}
	if r.VDS != VDSCCFLedgerSHA256 || len(r.CCF) != 1 || len(r.CCF[0].Path) == 0 {
		t.Fatalf("vds %d, %d CCF proofs", r.VDS, len(r.CCF))
	}
	if got := ccfKeyID(v.logKey[0]); !bytes.Equal(got, r.KID) {
		t.Errorf("CCF kid of the log key %s, receipt kid %s", got, r.KID)
	}
	for _, leaf := range []LeafConvention{LeafAuto, LeafIETF, LeafDirect} {
		res, err := r.VerifyInclusion(v.statement, v.logKey, leaf)
		if err != nil {
			t.Fatalf("leaf %s: %v", leaf, err)
		}
		if !strings.Contains(res.String(), "ok   receipt.leaf.ccf") || !strings.Contains(res.String(), "ok   receipt.signature") {
			t.Errorf("checks:\n%s", res)
		}
	}
	ts, err := AddReceipt(v.statement, v.receipt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyTransparentStatement(ts, v.logKey, LeafAuto, v.issuerKey); err != nil {
		t.Fatalf("transparent statement: %v", err)
	}
	// Another P-384 key: the kid names no given key.
	other, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := keys.NewPublicKey(&other.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.VerifyInclusion(v.statement, keys.Set{pk}, LeafAuto); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("wrong key: %v, want ErrKeyNotFound", err)
	}
	if _, err := VerifyTransparentStatement(ts, keys.Set{pk}, LeafAuto, nil); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("transparent statement, wrong key: %v, want ErrKeyNotFound", err)
	}
	// A consistency check or a raw leaf hash does not apply to vds 2.
	if _, err := r.VerifyConsistency(make([]byte, 32), v.logKey); !errors.Is(err, ErrUnsupportedVDS) {
		t.Errorf("consistency of a CCF receipt: %v", err)
	}
	if _, err := r.VerifyInclusionOfLeaf(make([]byte, 32), v.logKey); !errors.Is(err, ErrUnsupportedVDS) {
		t.Errorf("leaf hash against a CCF receipt: %v", err)
	}
}

// ccfTamper is one negative CCF vector: a change to Microsoft's receipt and
// where verification must stop.
type ccfTamper struct {
	name, description, check, sentinel string
	change                             func(p *CCFInclusionProof, payload *[]byte, sig []byte)
}

var ccfTampers = []ccfTamper{
	{"fail-tampered-leaf", "First byte of the leaf's internal-transaction-hash flipped: the recomputed root differs, so the signature does not cover it.",
		CheckReceiptSignature, "ErrProofMismatch", func(p *CCFInclusionProof, _ *[]byte, _ []byte) { p.InternalTxHash[0] ^= 1 }},
	{"fail-tampered-evidence", "Last character of the leaf's internal-evidence changed.",
		CheckReceiptSignature, "ErrProofMismatch", func(p *CCFInclusionProof, _ *[]byte, _ []byte) {
			p.InternalEvidence = p.InternalEvidence[:len(p.InternalEvidence)-1] + "0"
		}},
	{"fail-tampered-data-hash", "First byte of the leaf's data-hash flipped: the receipt is for another statement.",
		CheckReceiptProof, "ErrProofMismatch", func(p *CCFInclusionProof, _ *[]byte, _ []byte) { p.DataHash[0] ^= 1 }},
	{"fail-tampered-path", "First byte of the first path hash flipped.",
		CheckReceiptSignature, "ErrProofMismatch", func(p *CCFInclusionProof, _ *[]byte, _ []byte) { p.Path[0].Hash[0] ^= 1 }},
	{"fail-flipped-path-side", "The left flag of the first path element inverted.",
		CheckReceiptSignature, "ErrProofMismatch", func(p *CCFInclusionProof, _ *[]byte, _ []byte) { p.Path[0].Left = !p.Path[0].Left }},
	{"fail-truncated-path", "The last path element removed.",
		CheckReceiptSignature, "ErrProofMismatch", func(p *CCFInclusionProof, _ *[]byte, _ []byte) { p.Path = p.Path[:len(p.Path)-1] }},
	{"fail-tampered-signature", "Last byte of the receipt signature flipped.",
		CheckReceiptSignature, "ErrBadSignature", func(_ *CCFInclusionProof, _ *[]byte, sig []byte) { sig[len(sig)-1] ^= 1 }},
	{"fail-wrong-root", "A root that is not the one the proof gives, attached as the payload.",
		CheckReceiptProof, "ErrProofMismatch", func(p *CCFInclusionProof, payload *[]byte, _ []byte) {
			root := p.Root()
			root[0] ^= 1
			*payload = root
		}},
	{"fail-attached-root", "The right root attached as the payload: the CCF profile requires it detached.",
		CheckReceiptProof, "ErrMalformed", func(p *CCFInclusionProof, payload *[]byte, _ []byte) { *payload = p.Root() }},
}

// encodeCCFProof encodes p as the bstr-wrapped CCF proof map.
func encodeCCFProof(t testing.TB, p CCFInclusionProof) []byte {
	path := make([]any, 0, len(p.Path))
	for _, e := range p.Path {
		path = append(path, []any{e.Left, e.Hash})
	}
	b, err := cosewire.Enc.Marshal(map[int64]any{1: []any{p.InternalTxHash, p.InternalEvidence, p.DataHash}, 2: path})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tamperedCCF returns Microsoft's receipt with one change applied.
func tamperedCCF(t testing.TB, receipt []byte, change func(*CCFInclusionProof, *[]byte, []byte)) []byte {
	r, err := ParseReceipt(receipt)
	if err != nil {
		t.Fatal(err)
	}
	p := r.CCF[0]
	p.InternalTxHash = bytes.Clone(p.InternalTxHash)
	p.DataHash = bytes.Clone(p.DataHash)
	path := make([]CCFProofElement, len(p.Path))
	for i, e := range p.Path {
		path[i] = CCFProofElement{Left: e.Left, Hash: bytes.Clone(e.Hash)}
	}
	p.Path = path
	sig := bytes.Clone(r.msg.Signature)
	var payload []byte
	change(&p, &payload, sig)
	u, err := cosewire.Enc.Marshal(map[int64]any{LabelVDP: map[int64]any{proofInclusion: []cbor.RawMessage{cosewire.AppendBstr(nil, encodeCCFProof(t, p))}}})
	if err != nil {
		t.Fatal(err)
	}
	return cosewire.Build(r.msg.Protected, u, payload, sig)
}

// TestCCFNegativeVectors: each tampered copy of Microsoft's receipt in
// testdata/ccf-vds2 fails at its named check with its named sentinel, and the
// files are exactly what the tampering produces (-update-ccf rewrites them).
func TestCCFNegativeVectors(t *testing.T) {
	src := filepath.Join(vectorsDir(t), "valid-ccf-vds2")
	v := loadVector(t, src)
	if _, err := ParseReceipt(tamperedCCF(t, v.receipt, func(*CCFInclusionProof, *[]byte, []byte) {})); err != nil {
		t.Fatal(err)
	}
	if *updateCCF {
		for _, tc := range ccfTampers {
			dir := filepath.Join(ccfVectorsDir, tc.name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"statement.cose", "payload.bin", "issuer-key.pub", "log-key.pub"} {
				b, err := os.ReadFile(filepath.Join(src, f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			exp, _ := json.MarshalIndent(map[string]string{"description": tc.description, "verdict": "invalid", "check": tc.check, "error": tc.sentinel,
				"source": "scitt-cose-v1/valid-ccf-vds2 (Microsoft scitt-ccf-ledger 7.0.6 receipt) with one change"}, "", "  ")
			if err := os.WriteFile(filepath.Join(dir, "expected.json"), append(exp, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "receipt.cose"), tamperedCCF(t, v.receipt, tc.change), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(ccfVectorsDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(ccfTampers) {
		t.Fatalf("%d vectors in %s, want %d", len(entries), ccfVectorsDir, len(ccfTampers))
	}
	for _, tc := range ccfTampers {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(ccfVectorsDir, tc.name)
			got := loadVector(t, dir)
			if want := tamperedCCF(t, v.receipt, tc.change); !bytes.Equal(got.receipt, want) {
				t.Fatal("receipt.cose is not the tampered copy; run go test -run TestCCFNegativeVectors -update-ccf")
			}
			var exp struct{ Check, Error string }
			b, _ := os.ReadFile(filepath.Join(dir, "expected.json"))
			if err := json.Unmarshal(b, &exp); err != nil || exp.Check != tc.check || exp.Error != tc.sentinel {
				t.Fatalf("expected.json %s (%v), want %s %s", b, err, tc.check, tc.sentinel)
			}
			if _, err := ParseStatement(got.statement); err != nil {
				t.Fatal(err)
			}
			r, err := ParseReceipt(got.receipt)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.VerifyInclusion(got.statement, got.logKey, LeafAuto)
			var ce *CheckError
			if !errors.As(err, &ce) || ce.Check != tc.check {
				t.Fatalf("failed at %v (%v), want %s", ce, err, tc.check)
			}
			if !errors.Is(err, sentinels[tc.sentinel]) {
				t.Fatalf("%v does not wrap %s", err, tc.sentinel)
			}
		})
	}
}

// TestCCFMalformedProofs: proofs outside the profile's CDDL parse (so that
// inspect shows them) but fail verification at receipt.proof with
// ErrMalformed; a proof of another shape is an unsupported structure.
func TestCCFMalformedProofs(t *testing.T) {
	v := loadVector(t, filepath.Join(vectorsDir(t), "valid-ccf-vds2"))
	r, err := ParseReceipt(v.receipt)
	if err != nil {
		t.Fatal(err)
	}
	good := r.CCF[0]
	withProof := func(proof []byte) []byte {
		u, err := cosewire.Enc.Marshal(map[int64]any{LabelVDP: map[int64]any{proofInclusion: []cbor.RawMessage{cosewire.AppendBstr(nil, proof)}}})
		if err != nil {
			t.Fatal(err)
		}
		return cosewire.Build(r.msg.Protected, u, nil, r.msg.Signature)
	}
	enc := func(m map[int64]any) []byte {
		b, err := cosewire.Enc.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	path := []any{[]any{true, good.Path[0].Hash}}
	leaf := []any{good.InternalTxHash, good.InternalEvidence, good.DataHash}
	for name, proof := range map[string][]byte{
		"unknown key":       enc(map[int64]any{1: leaf, 2: path, 3: 0}),
		"no path":           enc(map[int64]any{1: leaf}),
		"empty path":        enc(map[int64]any{1: leaf, 2: []any{}}),
		"31-byte hash":      enc(map[int64]any{1: leaf, 2: []any{[]any{true, good.Path[0].Hash[:31]}}}),
		"left not a bool":   enc(map[int64]any{1: leaf, 2: []any{[]any{1, good.Path[0].Hash}}}),
		"element of 3":      enc(map[int64]any{1: leaf, 2: []any{[]any{true, good.Path[0].Hash, 0}}}),
		"empty evidence":    enc(map[int64]any{1: []any{good.InternalTxHash, "", good.DataHash}, 2: path}),
		"evidence too long": enc(map[int64]any{1: []any{good.InternalTxHash, strings.Repeat("e", 1025), good.DataHash}, 2: path}),
		"evidence as bytes": enc(map[int64]any{1: []any{good.InternalTxHash, []byte("ce"), good.DataHash}, 2: path}),
		"leaf of 2":         enc(map[int64]any{1: leaf[:2], 2: path}),
		"33-byte data hash": enc(map[int64]any{1: []any{good.InternalTxHash, good.InternalEvidence, append(bytes.Clone(good.DataHash), 0)}, 2: path}),
		"65 path elements": enc(map[int64]any{1: leaf, 2: func() []any {
			p := make([]any, 65)
			for i := range p {
				p[i] = path[0]
			}
			return p
		}()}),
	} {
		r, err := ParseReceipt(withProof(proof))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = r.VerifyInclusion(v.statement, v.logKey, LeafAuto)
		var ce *CheckError
		if !errors.Is(err, ErrMalformed) || !errors.As(err, &ce) || ce.Check != CheckReceiptProof {
			t.Errorf("%s: %v, want ErrMalformed at %s", name, err, CheckReceiptProof)
		}
	}
	for name, proof := range map[string][]byte{
		"array, not a map":         func() []byte { b, _ := cosewire.Enc.Marshal([]any{leaf, path}); return b }(),
		"RFC 9162 proof":           func() []byte { b, _ := cosewire.Enc.Marshal([]any{8, 2, [][]byte{good.Path[0].Hash}}); return b }(),
		"MMR proof {1: idx, 2: p}": enc(map[int64]any{1: 5, 2: [][]byte{good.Path[0].Hash}}),
	} {
		r, err := ParseReceipt(withProof(proof))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = r.VerifyInclusion(v.statement, v.logKey, LeafAuto)
		var ce *CheckError
		if !errors.Is(err, ErrUnsupportedVDS) || !errors.As(err, &ce) || ce.Check != CheckReceiptVDS {
			t.Errorf("%s: %v, want ErrUnsupportedVDS at %s", name, err, CheckReceiptVDS)
		}
	}
	// The good proof, re-encoded, still verifies (the encoder above is right).
	rb := withProof(encodeCCFProof(t, good))
	rr, err := ParseReceipt(rb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rr.VerifyInclusion(v.statement, v.logKey, LeafAuto); err != nil {
		t.Fatal(err)
	}
}
