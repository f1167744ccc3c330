package scitt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/keys"
)

var ctx = context.Background()

func mustKey(t testing.TB, alg cose.Algorithm) *keys.PrivateKey {
	t.Helper()
	k, err := keys.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testClaims() Claims {
	return Claims{Issuer: "spiffe://ci.example.org/github/acme/widgets", Subject: "sha256:abcd", IssuedAt: time.Unix(1764410000, 0).UTC()}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[]}`)
	for _, alg := range []cose.Algorithm{cose.AlgorithmES256, cose.AlgorithmES384, cose.AlgorithmES512, cose.AlgorithmEdDSA, cose.AlgorithmPS256} {
		for _, embed := range []bool{false, true} {
			t.Run(alg.String()+map[bool]string{false: "/hash", true: "/embedded"}[embed], func(t *testing.T) {
				key := mustKey(t, alg)
				var opts []SignOption
				if embed {
					opts = append(opts, WithEmbeddedPayload())
				} else {
					opts = append(opts, WithLocation("oci://r.example/x@sha256:1"))
				}
				raw, err := SignStatement(ctx, key, testClaims(), payload, append(opts, WithWIT("a.b.c"))...)
				if err != nil {
					t.Fatal(err)
				}
				s, err := ParseStatement(raw)
				if err != nil {
					t.Fatal(err)
				}
				if s.Issuer != testClaims().Issuer || s.Subject != testClaims().Subject || !s.IssuedAt.Equal(testClaims().IssuedAt) {
					t.Errorf("claims %q %q %v", s.Issuer, s.Subject, s.IssuedAt)
				}
				if !bytes.Equal(s.KID, key.Public().JWKThumbprint()) || s.Alg != alg || s.WIT != "a.b.c" {
					t.Errorf("kid %x alg %v wit %q", s.KID, s.Alg, s.WIT)
				}
				if embed {
					if s.ContentType != MediaTypeInToto || s.IsHashEnvelope() || !bytes.Equal(s.Payload, payload) {
						t.Errorf("embedded: ct %q payload %q", s.ContentType, s.Payload)
					}
				} else {
					sum := sha256.Sum256(payload)
					if s.PreimageContentType != MediaTypeInToto || s.PayloadHashAlg != AlgSHA256 || !bytes.Equal(s.Payload, sum[:]) || s.ContentType != "" || s.Location == "" {
						t.Errorf("hash envelope: %+v", s)
					}
				}
				res, err := s.Verify(keys.Set{key.Public()}, WithPreimage(payload))
				if err != nil || !res.OK() {
					t.Fatalf("verify: %v\n%s", err, res)
				}
				if _, err := s.Verify(keys.Set{key.Public()}, WithPreimage([]byte("other"))); !errors.Is(err, ErrPayloadMismatch) {
					t.Errorf("other preimage: %v, want ErrPayloadMismatch", err)
				}
				other := mustKey(t, alg)
				if _, err := s.Verify(keys.Set{other.Public()}); !errors.Is(err, ErrBadSignature) {
					t.Errorf("other key: %v, want ErrBadSignature", err)
				}
			})
		}
	}
}

func TestVerifyRejectsAlgorithmConfusion(t *testing.T) {
	key := mustKey(t, cose.AlgorithmES256)
	raw, err := SignStatement(ctx, key, testClaims(), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseStatement(raw)
	if err != nil {
		t.Fatal(err)
	}
	pinned := key.Public()
	pinned.Alg = cose.AlgorithmES384 // the key is pinned to another algorithm
	if _, err := s.Verify(keys.Set{pinned}); !errors.Is(err, ErrKeyNotFound) || !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("pinned alg: %v", err)
	}
	ed := mustKey(t, cose.AlgorithmEdDSA)
	if _, err := s.Verify(keys.Set{ed.Public()}); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Ed25519 key for ES256 statement: %v", err)
	}
	if _, err := s.Verify(nil); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("no keys: %v", err)
	}
}

// tree builds a log with the statement's entry at index among filler leaves.
func testTree(registered []byte, index, size uint64, c LeafConvention) *testonly.Tree {
	tr := testonly.New(rfc6962.DefaultHasher)
	for i := uint64(0); i < size; i++ {
		if i == index {
			tr.Append(LeafHash(registered, c))
			continue
		}
		tr.AppendData([]byte{byte(i), byte(i >> 8)})
	}
	return tr
}

func issueFor(t testing.TB, key *keys.PrivateKey, stmt []byte, index, size uint64, c LeafConvention) []byte {
	t.Helper()
	s, err := ParseStatement(stmt)
	if err != nil {
		t.Fatal(err)
	}
	tr := testTree(s.Registered(), index, size, c)
	path, err := tr.InclusionProof(index, size)
	if err != nil {
		t.Fatal(err)
	}
	r, err := IssueReceipt(ctx, key, ReceiptClaims{Issuer: "https://ts.example", Subject: "e", IssuedAt: time.Now()}, InclusionProof{TreeSize: size, LeafIndex: index, Path: path}, tr.Hash())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func serviceKey(t testing.TB) *keys.PrivateKey {
	k := mustKey(t, cose.AlgorithmES256)
	k.KID = k.Public().COSEThumbprint()
	return k
}

func TestReceiptsAddRemoveByteExact(t *testing.T) {
	issuer := mustKey(t, cose.AlgorithmES256)
	stmt, err := SignStatement(ctx, issuer, testClaims(), []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	ts1, ts2 := serviceKey(t), serviceKey(t)
	r1 := issueFor(t, ts1, stmt, 3, 7, LeafIETF)
	r2 := issueFor(t, ts2, stmt, 0, 1, LeafDirect)
	withOne, err := AddReceipt(stmt, r1)
	if err != nil {
		t.Fatal(err)
	}
	withTwo, err := AddReceipt(withOne, r2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Receipts(withTwo)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !bytes.Equal(got[0], r1) || !bytes.Equal(got[1], r2) {
		t.Fatalf("receipts not kept in order")
	}
	// Both receipts verify against the transparent statement.
	for i, c := range []struct {
		key  *keys.PrivateKey
		leaf LeafConvention
	}{{ts1, LeafIETF}, {ts2, LeafDirect}} {
		r, err := ParseReceipt(got[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.VerifyInclusion(withTwo, keys.Set{c.key.Public()}, c.leaf); err != nil {
			t.Errorf("receipt %d: %v", i, err)
		}
		// The wrong leaf convention fails as a proof mismatch.
		wrong := LeafDirect
		if c.leaf == LeafDirect {
			wrong = LeafIETF
		}
		if _, err := r.VerifyInclusion(withTwo, keys.Set{c.key.Public()}, wrong); !errors.Is(err, ErrProofMismatch) {
			t.Errorf("receipt %d with the other convention: %v", i, err)
		}
	}
	// The statement inside is untouched and still verifies.
	s, err := ParseStatement(withTwo)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Registered(), stmt) {
		t.Fatal("registered bytes differ from the signed statement")
	}
	if _, err := s.Verify(keys.Set{issuer.Public()}, WithPreimage([]byte("payload"))); err != nil {
		t.Fatal(err)
	}
	back, err := RemoveReceipts(withTwo)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, stmt) {
		t.Fatalf("remove receipts is not byte-exact:\n%x\n%x", back, stmt)
	}
}

func TestConsistencyReceipt(t *testing.T) {
	key := serviceKey(t)
	tr := testonly.New(rfc6962.DefaultHasher)
	for i := 0; i < 21; i++ {
		tr.AppendData([]byte{byte(i)})
	}
	for _, sizes := range [][2]uint64{{1, 2}, {3, 7}, {4, 8}, {5, 21}, {20, 21}, {7, 7}} {
		path, err := tr.ConsistencyProof(sizes[0], sizes[1])
		if err != nil {
			t.Fatal(err)
		}
		raw, err := IssueConsistencyReceipt(ctx, key, ReceiptClaims{Issuer: "https://ts"}, ConsistencyProof{TreeSize1: sizes[0], TreeSize2: sizes[1], Path: path}, tr.HashAt(sizes[1]))
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseReceipt(raw)
		if err != nil {
			t.Fatal(err)
		}
		root, err := r.VerifyConsistency(tr.HashAt(sizes[0]), keys.Set{key.Public()})
		if err != nil {
			t.Fatalf("%v: %v", sizes, err)
		}
		if !bytes.Equal(root, tr.HashAt(sizes[1])) {
			t.Errorf("%v: wrong new root", sizes)
		}
		if _, err := r.VerifyConsistency(tr.HashAt(sizes[0]+1), keys.Set{key.Public()}); !errors.Is(err, ErrProofMismatch) {
			t.Errorf("%v with a wrong old root: %v", sizes, err)
		}
	}
}

func TestEmptyPathOnlyForOneLeafTree(t *testing.T) {
	key := serviceKey(t)
	stmt, err := SignStatement(ctx, mustKey(t, cose.AlgorithmES256), testClaims(), []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	one := issueFor(t, key, stmt, 0, 1, LeafIETF)
	r, err := ParseReceipt(one)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.VerifyInclusion(stmt, keys.Set{key.Public()}, LeafIETF); err != nil {
		t.Fatalf("1-leaf tree: %v", err)
	}
	// An empty path for a 2-leaf tree has the wrong length.
	s, _ := ParseStatement(stmt)
	leaf := LeafHash(s.Registered(), LeafIETF)
	raw, err := IssueReceipt(ctx, key, ReceiptClaims{}, InclusionProof{TreeSize: 2, LeafIndex: 0}, leaf)
	if err != nil {
		t.Fatal(err)
	}
	r, err = ParseReceipt(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.VerifyInclusion(stmt, keys.Set{key.Public()}, LeafIETF); !errors.Is(err, ErrProofMismatch) {
		t.Fatalf("empty path in a 2-leaf tree: %v", err)
	}
}

func TestParseStatementStrict(t *testing.T) {
	key := mustKey(t, cose.AlgorithmES256)
	good, err := SignStatement(ctx, key, testClaims(), []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	// Replace the unprotected {} with {1: 1, 1: 2}.
	m, _ := ParseStatement(good)
	dupKeys := m.msg.WithUnprotected([]byte{0xa2, 0x01, 0x01, 0x01, 0x02})
	indef := m.msg.WithUnprotected([]byte{0xbf, 0xff})
	deep := bytes.Repeat([]byte{0x81}, 40)
	deep = append(deep, 0x00)
	deepStmt := m.msg.WithUnprotected(append([]byte{0xa1, 0x18, 0x64}, deep...))
	for name, b := range map[string][]byte{
		"empty":           {},
		"not cbor":        []byte("hello"),
		"untagged":        good[1:],
		"other tag":       append([]byte{0xd1}, good[1:]...),
		"three items":     append([]byte{0xd2, 0x83}, good[2:]...),
		"trailing":        append(bytes.Clone(good), 0xa0),
		"truncated":       good[:len(good)-1],
		"duplicate keys":  dupKeys,
		"indefinite map":  indef,
		"too deep":        deepStmt,
		"oversize":        append(append([]byte{0xd2, 0x84, 0x40, 0xa0, 0x5a}, 0x01, 0, 0, 0), make([]byte, 1<<24)...),
		"protected array": {0xd2, 0x84, 0x41, 0x80, 0xa0, 0x40, 0x41, 0x00},
	} {
		if _, err := ParseStatement(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestPlacementRules(t *testing.T) {
	key := mustKey(t, cose.AlgorithmES256)
	good, err := SignStatement(ctx, key, testClaims(), []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := ParseStatement(good)
	for name, u := range map[string][]byte{
		"258 unprotected": {0xa1, 0x19, 0x01, 0x02, 0x2f},      // {258: -16}
		"259 unprotected": {0xa1, 0x19, 0x01, 0x03, 0x61, 'x'}, // {259: "x"}
		"260 unprotected": {0xa1, 0x19, 0x01, 0x04, 0x61, 'x'}, // {260: "x"}
		"3 unprotected":   {0xa1, 0x03, 0x63, 'a', '/', 'b'},   // {3: "a/b"}
	} {
		st, err := ParseStatement(s.msg.WithUnprotected(u))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := st.Verify(keys.Set{key.Public()}); !errors.Is(err, ErrHeaderPlacement) {
			t.Errorf("%s: %v, want ErrHeaderPlacement", name, err)
		}
	}
}

// TestUnsupportedVDS: a vds this package does not implement (3) fails at
// the vds check with ErrUnsupportedVDS, and so does the shared vector whose
// receipt says vds 2 but carries RFC 9162 proofs (not a CCF receipt).
func TestUnsupportedVDS(t *testing.T) {
	protected, err := cosewire.Enc.Marshal(map[int64]any{LabelAlg: int64(-7), LabelVDS: int64(3)})
	if err != nil {
		t.Fatal(err)
	}
	unprotected, err := cosewire.Enc.Marshal(map[int64]any{LabelVDP: map[int64]any{-1: [][]byte{{0x80}}}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseReceipt(cosewire.Build(protected, unprotected, nil, make([]byte, 64)))
	if err != nil {
		t.Fatal(err)
	}
	key := mustKey(t, -7)
	stmt, err := SignStatement(ctx, key, testClaims(), []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.VerifyInclusion(stmt, keys.Set{key.Public()}, LeafIETF)
	if !errors.Is(err, ErrUnsupportedVDS) {
		t.Fatalf("%v", err)
	}
	var ce *CheckError
	if !errors.As(err, &ce) || ce.Check != CheckReceiptVDS {
		t.Fatalf("failed check %v", ce)
	}

	v := loadVector(t, vectorsDir(t)+"/fail-unsupported-vds")
	r, err = ParseReceipt(v.receipt)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.VerifyInclusion(v.statement, v.logKey, LeafAuto)
	if !errors.Is(err, ErrUnsupportedVDS) || !errors.As(err, &ce) || ce.Check != CheckReceiptVDS {
		t.Fatalf("vds 2 receipt with RFC 9162 proofs: %v, want ErrUnsupportedVDS at %s", err, CheckReceiptVDS)
	}
}

// TestLeafAuto: a receipt that names its leaf convention verifies under
// LeafAuto with that convention only, and refuses an explicit other one; a
// receipt that names none is tried under ietf, then direct.
func TestLeafAuto(t *testing.T) {
	key := serviceKey(t)
	stmt, err := SignStatement(ctx, mustKey(t, cose.AlgorithmES256), testClaims(), []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := SignStatement(ctx, mustKey(t, cose.AlgorithmES256), testClaims(), []byte("q"))
	if err != nil {
		t.Fatal(err)
	}
	ks := keys.Set{key.Public()}
	issue := func(c LeafConvention, name string) *Receipt {
		s, _ := ParseStatement(stmt)
		tr := testTree(s.Registered(), 2, 5, c)
		path, err := tr.InclusionProof(2, 5)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := IssueReceipt(ctx, key, ReceiptClaims{Issuer: "https://ts.example", Leaf: name}, InclusionProof{TreeSize: 5, LeafIndex: 2, Path: path}, tr.Hash())
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseReceipt(raw)
		if err != nil {
			t.Fatal(err)
		}
		if r.Leaf != name {
			t.Fatalf("receipt names %q, want %q", r.Leaf, name)
		}
		return r
	}
	for _, c := range []LeafConvention{LeafIETF, LeafDirect} {
		named, bare := issue(c, c.String()), issue(c, "")
		for _, r := range []*Receipt{named, bare} {
			res, err := r.VerifyInclusion(stmt, ks, LeafAuto)
			if err != nil {
				t.Fatalf("%s, named %q: %v", c, r.Leaf, err)
			}
			if want := "ok   receipt.leaf." + c.String(); !strings.Contains(res.String(), want) {
				t.Errorf("%s, named %q: no %q in\n%s", c, r.Leaf, want, res)
			}
			if _, err := r.VerifyInclusion(other, ks, LeafAuto); !errors.Is(err, ErrProofMismatch) {
				t.Errorf("%s, named %q, another statement: %v", c, r.Leaf, err)
			}
		}
		wrong := LeafIETF
		if c == LeafIETF {
			wrong = LeafDirect
		}
		_, err := named.VerifyInclusion(stmt, ks, wrong)
		var ce *CheckError
		if !errors.Is(err, ErrProofMismatch) || !errors.As(err, &ce) || ce.Check != CheckReceiptLeaf {
			t.Errorf("%s receipt verified as %s: %v", c, wrong, err)
		}
	}
	for _, bad := range []string{"auto", "sha3"} {
		if _, err := IssueReceipt(ctx, key, ReceiptClaims{Leaf: bad}, InclusionProof{TreeSize: 1}, make([]byte, 32)); err == nil {
			t.Errorf("issued a receipt naming leaf convention %q", bad)
		}
	}
}

// TestGraftedReceiptKindRefused: a consistency receipt whose signature covers
// the root of a tree holding the statement, with the statement's inclusion
// proof grafted into its unprotected header, is not an inclusion receipt,
// whatever its sub; and an inclusion receipt with a grafted consistency proof
// is not a consistency receipt.
func TestGraftedReceiptKindRefused(t *testing.T) {
	key := serviceKey(t)
	ks := keys.Set{key.Public()}
	stmt, err := SignStatement(ctx, mustKey(t, cose.AlgorithmES256), testClaims(), []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := ParseStatement(stmt)
	entry := sha256.Sum256(s.Registered())
	tr := testTree(s.Registered(), 3, 8, LeafIETF)
	ipath, err := tr.InclusionProof(3, 8)
	if err != nil {
		t.Fatal(err)
	}
	cpath, err := tr.ConsistencyProof(5, 8)
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"consistency 5 8", hexString(entry[:]), ""} {
		claims := ReceiptClaims{Issuer: "https://ts.example", Subject: sub, IssuedAt: time.Now()}
		incl, err := IssueReceipt(ctx, key, claims, InclusionProof{TreeSize: 8, LeafIndex: 3, Path: ipath}, tr.Hash())
		if err != nil {
			t.Fatal(err)
		}
		cons, err := IssueConsistencyReceipt(ctx, key, claims, ConsistencyProof{TreeSize1: 5, TreeSize2: 8, Path: cpath}, tr.Hash())
		if err != nil {
			t.Fatal(err)
		}
		im, _ := cosewire.Parse(incl, MaxReceiptSize)
		cm, _ := cosewire.Parse(cons, MaxReceiptSize)

		// The untouched receipts verify as what they are.
		ir, _ := ParseReceipt(incl)
		if ir.Kind != KindInclusion {
			t.Fatalf("inclusion receipt kind = %q", ir.Kind)
		}
		if _, err := ir.VerifyInclusion(stmt, ks, LeafIETF); err != nil {
			t.Fatal(err)
		}
		cr, _ := ParseReceipt(cons)
		if cr.Kind != KindConsistency {
			t.Fatalf("consistency receipt kind = %q", cr.Kind)
		}
		if _, err := cr.VerifyConsistency(tr.HashAt(5), ks); err != nil {
			t.Fatal(err)
		}

		graft, err := ParseReceipt(cm.WithUnprotected(im.Unprotected))
		if err != nil {
			t.Fatal(err)
		}
		res, err := graft.VerifyInclusion(stmt, ks, LeafIETF)
		if !errors.Is(err, ErrWrongReceiptKind) || !errors.Is(err, ErrProofMismatch) {
			t.Fatalf("sub %q: consistency receipt with a grafted inclusion proof: %v, want ErrWrongReceiptKind", sub, err)
		}
		if last := res.Checks[len(res.Checks)-1]; last.OK || last.Name != CheckReceiptKind {
			t.Fatalf("last check %+v, want a failed %s", last, CheckReceiptKind)
		}
		if _, err := graft.VerifyInclusionOfLeaf(LeafHash(s.Registered(), LeafIETF), ks); !errors.Is(err, ErrWrongReceiptKind) {
			t.Fatalf("sub %q: VerifyInclusionOfLeaf of a grafted receipt: %v", sub, err)
		}
		back, err := ParseReceipt(im.WithUnprotected(cm.Unprotected))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := back.VerifyConsistency(tr.HashAt(5), ks); !errors.Is(err, ErrWrongReceiptKind) {
			t.Fatalf("sub %q: inclusion receipt with a grafted consistency proof: %v", sub, err)
		}
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestTreeSignature checks one signature per tree serves the receipts of
// different entries, that each verifies, and that SignTree refuses a
// per-entry subject and a proof for another tree size.
func TestTreeSignature(t *testing.T) {
	key := serviceKey(t)
	issuer := mustKey(t, cose.AlgorithmES256)
	const size = 9
	var stmts [2][]byte
	tr := testonly.New(rfc6962.DefaultHasher)
	for i := range size {
		if i < 2 {
			s, err := SignStatement(ctx, issuer, testClaims(), fmt.Append(nil, "payload ", i))
			if err != nil {
				t.Fatal(err)
			}
			stmts[i] = s
			p, _ := ParseStatement(s)
			tr.Append(LeafHash(p.Registered(), LeafIETF))
			continue
		}
		tr.Append(rfc6962.DefaultHasher.HashLeaf(fmt.Append(nil, i)))
	}
	if _, err := SignTree(ctx, key, ReceiptClaims{Issuer: "https://ts.example", Subject: "entry"}, size, tr.Hash()); err == nil {
		t.Fatal("SignTree accepted a per-entry subject")
	}
	ts, err := SignTree(ctx, key, ReceiptClaims{Issuer: "https://ts.example", IssuedAt: time.Now(), Leaf: "ietf"}, size, tr.Hash())
	if err != nil {
		t.Fatal(err)
	}
	var sigs [2][]byte
	for i, s := range stmts {
		path, err := tr.InclusionProof(uint64(i), size)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := ts.Receipt(InclusionProof{TreeSize: size, LeafIndex: uint64(i), Path: path})
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseReceipt(raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.VerifyInclusion(s, keys.Set{key.Public()}, LeafIETF); err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
		if r.Subject != "" || r.Kind != KindInclusion {
			t.Fatalf("receipt %d: sub %q kind %q", i, r.Subject, r.Kind)
		}
		sigs[i] = raw[len(raw)-64:]
		// The other statement's receipt must not verify this one.
		if i == 1 {
			if _, err := r.VerifyInclusion(stmts[0], keys.Set{key.Public()}, LeafIETF); err == nil {
				t.Fatal("receipt 1 verified statement 0")
			}
		}
	}
	if !bytes.Equal(sigs[0], sigs[1]) {
		t.Fatal("receipts of one tree carry different signatures")
	}
	if _, err := ts.Receipt(InclusionProof{TreeSize: size + 1, LeafIndex: 0}); !errors.Is(err, ErrProofMismatch) {
		t.Fatalf("proof for another size: %v, want ErrProofMismatch", err)
	}
}
