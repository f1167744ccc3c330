// Command genvectors writes Trustfabric's own SCITT test vectors to
// testdata/trustfabric-v1: one positive vector and one vector per single
// fault, each failing for exactly one reason.
//
// Run it from the repository root:
//
//	go run ./devtools/genvectors -out testdata/trustfabric-v1
//
// -only NAME[,NAME] writes just those vectors (with fresh keys of their own),
// so a vector can be added without changing the committed ones.
//
// Each vector directory holds statement.cose, receipt.cose, payload.bin,
// issuer-key.jwk and log-key.jwk (public keys) and expected.json, which names
// the verdict, the check that fails and the pkg/scitt sentinel error it
// wraps. Keys are fresh on every run, so regenerating changes every byte; the
// committed vectors are the reference. The tree has 8 leaves and the
// statement is at index 5; the filler leaves are the entries
// SHA-256("trustfabric vectors v1 filler <i>").
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

const (
	treeSize  = 8
	leafIndex = 5
	issuer    = "spiffe://ci.example.org/github/acme/widgets/.github/workflows/release.yml/refs/heads/main"
	subject   = "oci://registry.example.org/acme/widgets@sha256:0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
	tsIssuer  = "https://ts.example.org"
)

var iat = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

type expected struct {
	Description string `json:"description"`
	Verdict     string `json:"verdict"`
	Check       string `json:"check,omitempty"`
	Error       string `json:"error,omitempty"`
	LeafIndex   uint64 `json:"leaf_index"`
	TreeSize    uint64 `json:"tree_size"`
	Leaf        string `json:"leaf_convention"`
}

type gen struct {
	ctx       context.Context
	issuerKey *keys.PrivateKey
	logKey    *keys.PrivateKey
	otherKey  *keys.PrivateKey
	payload   []byte
	statement []byte
	out       string
}

func main() {
	out := flag.String("out", "testdata/trustfabric-v1", "output directory")
	only := flag.String("only", "", "comma-separated vector names: write only these")
	flag.Parse()
	if err := run(*out, *only); err != nil {
		log.Fatal(err)
	}
}

func run(out, only string) error {
	g := &gen{ctx: context.Background(), out: out}
	var err error
	if g.issuerKey, err = keys.Generate(cose.AlgorithmES256); err != nil {
		return err
	}
	if g.logKey, err = keys.Generate(cose.AlgorithmES256); err != nil {
		return err
	}
	g.logKey.KID = g.logKey.Public().COSEThumbprint()
	if g.otherKey, err = keys.Generate(cose.AlgorithmES256); err != nil {
		return err
	}
	g.otherKey.KID = g.otherKey.Public().COSEThumbprint()
	g.payload = []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"registry.example.org/acme/widgets","digest":{"sha256":"0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"https://trustfabric.dev/buildtypes/github-actions/v1"}}}`)
	claims := scitt.Claims{Issuer: issuer, Subject: subject, IssuedAt: iat}
	if g.statement, err = scitt.SignStatement(g.ctx, g.issuerKey, claims, g.payload); err != nil {
		return err
	}
	hashEnvelope := func(mod func(h map[any]any)) []byte {
		sum := sha256.Sum256(g.payload)
		h := g.baseHeader()
		if mod != nil {
			mod(h)
		}
		return g.sign1(g.issuerKey, h, sum[:])
	}

	cases := []struct {
		name, desc      string
		statement       []byte
		receipt         func(stmt []byte) []byte
		check, sentinel string
	}{
		{name: "valid", desc: "ES256 hash envelope over an in-toto statement, inclusion receipt at index 5 of 8; everything verifies."},
		{name: "fail-tampered-signature", desc: "Last byte of the statement signature flipped; the receipt covers the tampered bytes, so only the statement signature fails.",
			statement: flipLast(g.statement), check: scitt.CheckStatementSignature, sentinel: "ErrBadSignature"},
		{name: "fail-wrong-root", desc: "The service signed the root of a different tree.",
			receipt: func(stmt []byte) []byte {
				return g.receipt(stmt, leafIndex, func(p *scitt.InclusionProof, root []byte) []byte { r := sha256.Sum256(root); return r[:] })
			},
			check: scitt.CheckReceiptSignature, sentinel: "ErrProofMismatch"},
		{name: "fail-wrong-index", desc: "The proof claims leaf index 4 with the audit path of index 5.",
			receipt: func(stmt []byte) []byte {
				return g.receipt(stmt, leafIndex, func(p *scitt.InclusionProof, root []byte) []byte { p.LeafIndex = 4; return root })
			},
			check: scitt.CheckReceiptSignature, sentinel: "ErrProofMismatch"},
		{name: "fail-index-out-of-range", desc: "The proof claims leaf index 8 in a tree of size 8.",
			receipt: func(stmt []byte) []byte { return g.rawReceipt(stmt, 8, treeSize) },
			check:   scitt.CheckReceiptProof, sentinel: "ErrProofMismatch"},
		{name: "fail-truncated", desc: "The statement is cut short by 10 bytes.",
			statement: g.statement[:len(g.statement)-10], check: "statement.parse", sentinel: "ErrMalformed"},
		{name: "fail-trailing-bytes", desc: "One zero byte follows the statement.",
			statement: append(append([]byte{}, g.statement...), 0), check: "statement.parse", sentinel: "ErrMalformed"},
		{name: "fail-untagged", desc: "The statement lacks the COSE_Sign1 tag 18.",
			statement: g.statement[1:], check: "statement.parse", sentinel: "ErrMalformed"},
		{name: "fail-wrong-key", desc: "The receipt is signed by a key the verifier does not trust (its kid names no trusted key).",
			receipt: func(stmt []byte) []byte { return g.receiptBy(g.otherKey, stmt) },
			check:   scitt.CheckReceiptSignature, sentinel: "ErrKeyNotFound"},
		{name: "fail-missing-cwt-claims", desc: "The protected header has no CWT claims (15).",
			statement: hashEnvelope(func(h map[any]any) { delete(h, int64(scitt.LabelCWTClaims)) }),
			check:     scitt.CheckStatementHeaders, sentinel: "ErrMissingClaims"},
		{name: "fail-content-type-in-hash-envelope", desc: "A hash envelope (258) that also carries content type (3).",
			statement: hashEnvelope(func(h map[any]any) { h[int64(scitt.LabelContentType)] = "application/json" }),
			check:     scitt.CheckStatementHeaders, sentinel: "ErrHeaderPlacement"},
		{name: "fail-bad-payload-length", desc: "A SHA-256 hash envelope whose payload is 31 bytes.",
			statement: func() []byte { sum := sha256.Sum256(g.payload); return g.sign1(g.issuerKey, g.baseHeader(), sum[:31]) }(),
			check:     scitt.CheckStatementPayload, sentinel: "ErrPayloadMismatch"},
		{name: "fail-receipt-for-another-statement", desc: "A valid receipt, but for a different statement by the same issuer.",
			receipt: func([]byte) []byte {
				other, err := scitt.SignStatement(g.ctx, g.issuerKey, scitt.Claims{Issuer: issuer, Subject: subject + "0", IssuedAt: iat}, g.payload)
				must(err)
				return g.receipt(other, leafIndex, nil)
			},
			check: scitt.CheckReceiptSignature, sentinel: "ErrProofMismatch"},
		{name: "fail-critical-unknown-header", desc: "The statement's crit (2) names label -70001, which a verifier does not understand (RFC 9052 §3.1); the receipt covers it, so only crit fails.",
			statement: hashEnvelope(func(h map[any]any) { h[int64(scitt.LabelCrit)] = []any{int64(-70001)}; h[int64(-70001)] = int64(1) }),
			check:     "statement.parse", sentinel: "ErrCriticalHeader"},
		{name: "fail-receipt-critical-unknown-header", desc: "The receipt's crit (2) names label -70001, which a verifier does not understand (RFC 9052 §3.1); proof and signature are otherwise valid.",
			receipt: func(stmt []byte) []byte {
				return g.rawReceiptWith(stmt, leafIndex, treeSize, func(h map[any]any) { h[int64(scitt.LabelCrit)] = []any{int64(-70001)}; h[int64(-70001)] = int64(1) })
			},
			check: "receipt.parse", sentinel: "ErrCriticalHeader"},
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		if n != "" {
			want[n] = true
		}
	}
	for _, c := range cases {
		if len(want) > 0 && !want[c.name] {
			continue
		}
		delete(want, c.name)
		stmt := c.statement
		if stmt == nil {
			stmt = g.statement
		}
		var receipt []byte
		switch {
		case c.receipt != nil:
			receipt = c.receipt(stmt)
		case c.check == "statement.parse":
			receipt = g.receipt(g.statement, leafIndex, nil)
		default:
			receipt = g.receipt(stmt, leafIndex, nil)
		}
		exp := expected{Description: c.desc, Verdict: "valid", LeafIndex: leafIndex, TreeSize: treeSize, Leaf: "ietf"}
		if c.check != "" {
			exp.Verdict, exp.Check, exp.Error = "invalid", c.check, c.sentinel
		}
		if err := g.write(c.name, stmt, receipt, exp); err != nil {
			return err
		}
	}
	for n := range want {
		return fmt.Errorf("-only: no vector named %q", n)
	}
	return nil
}

func (g *gen) baseHeader() map[any]any {
	return map[any]any{
		int64(scitt.LabelAlg):                 int64(cose.AlgorithmES256),
		int64(scitt.LabelKID):                 g.issuerKey.KID,
		int64(scitt.LabelCWTClaims):           map[int64]any{1: issuer, 2: subject, 6: iat.Unix()},
		int64(scitt.LabelPayloadHashAlg):      int64(-16),
		int64(scitt.LabelPreimageContentType): scitt.MediaTypeInToto,
	}
}

func (g *gen) sign1(key *keys.PrivateKey, h map[any]any, payload []byte) []byte {
	protected, err := cosewire.Enc.Marshal(h)
	must(err)
	s, err := cose.NewSigner(key.Alg, key.Signer)
	must(err)
	sig, err := s.Sign(rand.Reader, cosewire.SigStructure(protected, payload))
	must(err)
	return cosewire.Build(protected, cosewire.EmptyMap, payload, sig)
}

// tree returns an 8-leaf tree with stmt's entry at leafIndex.
func (g *gen) tree(stmt []byte) *testonly.Tree {
	t := testonly.New(rfc6962.DefaultHasher)
	for i := 0; i < treeSize; i++ {
		if i == leafIndex {
			m, err := cosewire.Parse(stmt, scitt.MaxStatementSize)
			if err != nil { // malformed statements get the entry of their raw bytes
				e := sha256.Sum256(stmt)
				t.AppendData(e[:])
				continue
			}
			e := sha256.Sum256(m.Stripped())
			t.AppendData(e[:])
			continue
		}
		e := sha256.Sum256([]byte(fmt.Sprintf("trustfabric vectors v1 filler %d", i)))
		t.AppendData(e[:])
	}
	return t
}

func (g *gen) receipt(stmt []byte, index uint64, mod func(*scitt.InclusionProof, []byte) []byte) []byte {
	return g.receiptWith(g.logKey, stmt, index, mod)
}

func (g *gen) receiptBy(key *keys.PrivateKey, stmt []byte) []byte {
	return g.receiptWith(key, stmt, leafIndex, nil)
}

func (g *gen) receiptWith(key *keys.PrivateKey, stmt []byte, index uint64, mod func(*scitt.InclusionProof, []byte) []byte) []byte {
	t := g.tree(stmt)
	path, err := t.InclusionProof(index, treeSize)
	must(err)
	p := scitt.InclusionProof{TreeSize: treeSize, LeafIndex: index, Path: path}
	root := t.Hash()
	if mod != nil {
		root = mod(&p, root)
	}
	r, err := scitt.IssueReceipt(g.ctx, key, scitt.ReceiptClaims{Issuer: tsIssuer, Subject: entryID(stmt), IssuedAt: iat}, p, root)
	must(err)
	return r
}

// rawReceipt builds a receipt whose proof claims (index, size) as given,
// bypassing IssueReceipt's own range check.
func (g *gen) rawReceipt(stmt []byte, index, size uint64) []byte {
	return g.rawReceiptWith(stmt, index, size, nil)
}

// rawReceiptWith is rawReceipt with mod applied to the protected header.
func (g *gen) rawReceiptWith(stmt []byte, index, size uint64, mod func(map[any]any)) []byte {
	t := g.tree(stmt)
	path, err := t.InclusionProof(leafIndex, treeSize)
	must(err)
	proof, err := cosewire.Enc.Marshal([]any{size, index, path})
	must(err)
	h := map[any]any{
		int64(scitt.LabelAlg):       int64(cose.AlgorithmES256),
		int64(scitt.LabelKID):       g.logKey.KID,
		int64(scitt.LabelVDS):       int64(1),
		int64(scitt.LabelCWTClaims): map[int64]any{1: tsIssuer, 2: entryID(stmt), 6: iat.Unix()},
	}
	if mod != nil {
		mod(h)
	}
	protected, err := cosewire.Enc.Marshal(h)
	must(err)
	s, err := cose.NewSigner(g.logKey.Alg, g.logKey.Signer)
	must(err)
	sig, err := s.Sign(rand.Reader, cosewire.SigStructure(protected, t.Hash()))
	must(err)
	u, err := cosewire.Enc.Marshal(map[int64]any{scitt.LabelVDP: map[int64]any{-1: [][]byte{proof}}})
	must(err)
	return cosewire.Build(protected, u, nil, sig)
}

func entryID(stmt []byte) string {
	e, err := scitt.EntryHash(stmt)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%x", e)
}

func (g *gen) write(name string, stmt, receipt []byte, exp expected) error {
	dir := filepath.Join(g.out, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	issuerJWK, err := g.issuerKey.Public().MarshalJWK()
	if err != nil {
		return err
	}
	logJWK, err := g.logKey.Public().MarshalJWK()
	if err != nil {
		return err
	}
	expJSON, err := json.MarshalIndent(exp, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"statement.cose": stmt, "receipt.cose": receipt, "payload.bin": g.payload,
		"issuer-key.jwk": issuerJWK, "log-key.jwk": logJWK, "expected.json": append(expJSON, '\n'),
	}
	for f, b := range files {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func flipLast(b []byte) []byte {
	out := append([]byte{}, b...)
	out[len(out)-1] ^= 0x01
	return out
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
