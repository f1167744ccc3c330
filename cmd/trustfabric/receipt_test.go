package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// TestReceiptVerifyLeafAuto is issue 11 item 5 through the CLI: `receipt
// verify` (default --leaf auto) takes the leaf convention from the service's
// configuration document when given its URL, else from the receipt, else
// tries ietf then direct; a receipt that contradicts the service's metadata
// is refused with a message saying so.
func TestReceiptVerifyLeafAuto(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	mustRun(t, "key", "generate", "--out", p("issuer.jwk"), "--public-out", p("issuer.pub.jwk"))
	ts := startServe(t, "--data", p("data"), "--trust-key", p("issuer.pub.jwk"))
	os.WriteFile(p("prov.json"), []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}`), 0o644)
	mustRun(t, "statement", "sign", "--key", p("issuer.jwk"), "--issuer", "https://ci.example.org", "--subject", "sha256:00", "--payload", p("prov.json"), "--out", p("s.cose"))
	mustRun(t, "register", "--ts", ts, p("s.cose"), "--out", p("t.cose"), "--receipt-out", p("r.cose"))

	// The service's own receipt, against its URL: the metadata decides.
	code, out, errOut := tf(t, "receipt", "verify", "--statement", p("s.cose"), "--receipt", p("r.cose"), "--service-key", ts)
	if code != 0 || !strings.Contains(out, "ok   receipt.leaf.ietf") || !strings.Contains(errOut, "leaf convention ietf, from "+ts+"/.well-known/transparency-configuration") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if out := mustRun(t, "receipt", "verify", p("t.cose"), "--service-key", ts, "--issuer-key", p("issuer.pub.jwk")); !strings.Contains(out, "receipt[0].receipt.leaf.ietf") {
		t.Errorf("transparent statement:\n%s", out)
	}

	// Receipts the service's key signs over a direct-convention tree (as
	// another implementation would), with and without naming it.
	svcKey, err := keys.LoadPrivate(p("data/keys/service.jwk"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keys.MarshalCOSEKeySet(keys.Set{svcKey.Public()})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p("ts.pub.cose"), ks, 0o644)
	stmt, _ := os.ReadFile(p("s.cose"))
	tree := testonly.New(rfc6962.DefaultHasher)
	tree.AppendData([]byte("a"))
	tree.Append(scitt.LeafHash(stmt, scitt.LeafDirect))
	tree.AppendData([]byte("b"))
	path, err := tree.InclusionProof(1, 3)
	if err != nil {
		t.Fatal(err)
	}
	for name, leaf := range map[string]string{"bare.cose": "", "named.cose": "direct"} {
		r, err := scitt.IssueReceipt(context.Background(), svcKey, scitt.ReceiptClaims{Issuer: "https://ts.example", IssuedAt: time.Now(), Leaf: leaf},
			scitt.InclusionProof{TreeSize: 3, LeafIndex: 1, Path: path}, tree.Hash())
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p(name), r, 0o644)
	}
	verify := func(receipt, key string, extra ...string) (int, string) {
		code, out, errOut := tf(t, append([]string{"receipt", "verify", "--statement", p("s.cose"), "--receipt", p(receipt), "--service-key", key}, extra...)...)
		return code, out + errOut
	}
	// Key file, no metadata: a bare receipt is tried ietf then direct, a
	// named one verifies under what it names.
	for _, r := range []string{"bare.cose", "named.cose"} {
		if code, out := verify(r, p("ts.pub.cose")); code != 0 || !strings.Contains(out, "ok   receipt.leaf.direct") {
			t.Errorf("%s with the key file: exit %d\n%s", r, code, out)
		}
	}
	// The service's URL: its metadata says ietf, so the direct receipts do
	// not verify, the named one with a message naming the contradiction.
	if code, out := verify("bare.cose", ts); code != exitInvalid {
		t.Errorf("bare direct receipt against the service's metadata: exit %d\n%s", code, out)
	}
	if code, out := verify("named.cose", ts); code != exitInvalid || !strings.Contains(out, "names leaf convention direct, but ietf was asked for") {
		t.Errorf("named direct receipt against the service's metadata: exit %d\n%s", code, out)
	}
	// An explicit --leaf wins over the metadata.
	if code, out := verify("bare.cose", ts, "--leaf", "direct"); code != 0 {
		t.Errorf("--leaf direct: exit %d\n%s", code, out)
	}
	if code, _, _ := tf(t, "receipt", "verify", "--statement", p("s.cose"), "--receipt", p("r.cose"), "--service-key", ts, "--leaf", "sha3"); code != exitUsage {
		t.Errorf("unknown --leaf: exit %d, want %d", code, exitUsage)
	}
}

// TestReceiptVerifyCCF is issue 11 item 3 through the CLI: Microsoft's CCF
// receipt (scitt-ccf-ledger, vds 2) verifies detached and in a Transparent
// Statement; a tampered copy does not.
func TestReceiptVerifyCCF(t *testing.T) {
	v := "../../testdata/scitt-cose-v1/valid-ccf-vds2/"
	out := mustRun(t, "receipt", "verify", "--statement", v+"statement.cose", "--receipt", v+"receipt.cose", "--service-key", v+"log-key.pub")
	if !strings.Contains(out, "ok   receipt.leaf.ccf") || !strings.Contains(out, "valid") {
		t.Errorf("CCF receipt:\n%s", out)
	}
	stmt, _ := os.ReadFile(v + "statement.cose")
	receipt, _ := os.ReadFile(v + "receipt.cose")
	transparent, err := scitt.AddReceipt(stmt, receipt)
	if err != nil {
		t.Fatal(err)
	}
	tfile := filepath.Join(t.TempDir(), "t.cose")
	os.WriteFile(tfile, transparent, 0o644)
	mustRun(t, "receipt", "verify", tfile, "--service-key", v+"log-key.pub", "--issuer-key", v+"issuer-key.pub")
	for _, bad := range []string{"fail-tampered-leaf", "fail-tampered-path", "fail-tampered-signature", "fail-wrong-root"} {
		d := "../../pkg/scitt/testdata/ccf-vds2/" + bad + "/"
		if code, out, errOut := tf(t, "receipt", "verify", "--statement", d+"statement.cose", "--receipt", d+"receipt.cose", "--service-key", d+"log-key.pub"); code != exitInvalid {
			t.Errorf("%s: exit %d\n%s%s", bad, code, out, errOut)
		}
	}
}

// TestCriticalHeadersCLI is issue 11 item 8's crit defect through the CLI,
// on the two crit vectors of testdata/trustfabric-v1: `receipt verify`
// (detached and as a Transparent Statement) and `statement verify` refuse a
// statement or receipt whose crit (label 2) names a header parameter they do
// not understand (RFC 9052 §3.1), saying so; `serve` refuses to register the
// statement (400 Unknown Critical Header), and registers the valid vector's.
func TestCriticalHeadersCLI(t *testing.T) {
	v := "../../testdata/trustfabric-v1/"
	stmtCrit, rcptCrit, valid := v+"fail-critical-unknown-header/", v+"fail-receipt-critical-unknown-header/", v+"valid/"
	dir := t.TempDir()
	// A Transparent Statement carrying the critical receipt, built by hand
	// (scitt.AddReceipt refuses it).
	transparent := func(stmtFile, receiptFile string) string {
		stmt, _ := os.ReadFile(stmtFile)
		rb, _ := os.ReadFile(receiptFile)
		m, err := cosewire.Parse(stmt, scitt.MaxStatementSize)
		if err != nil {
			t.Fatal(err)
		}
		u, err := cosewire.Enc.Marshal(map[int64]any{scitt.LabelReceipts: [][]byte{rb}})
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, filepath.Base(filepath.Dir(receiptFile))+".cose")
		os.WriteFile(f, cosewire.Build(m.Protected, u, m.Payload, m.Signature), 0o644)
		return f
	}
	refused := func(name string, args ...string) {
		t.Helper()
		code, out, errOut := tf(t, args...)
		if code == 0 || !strings.Contains(out+errOut, "unknown critical header") || !strings.Contains(out+errOut, "-70001") {
			t.Errorf("%s: exit %d, want a refusal naming the critical label\n%s%s", name, code, out, errOut)
		}
	}
	for _, c := range []struct{ name, dir string }{{"critical statement", stmtCrit}, {"critical receipt", rcptCrit}} {
		refused(c.name+", detached", "receipt", "verify", "--statement", c.dir+"statement.cose", "--receipt", c.dir+"receipt.cose", "--service-key", c.dir+"log-key.jwk", "--issuer-key", c.dir+"issuer-key.jwk")
		refused(c.name+", transparent", "receipt", "verify", transparent(c.dir+"statement.cose", c.dir+"receipt.cose"), "--service-key", c.dir+"log-key.jwk", "--issuer-key", c.dir+"issuer-key.jwk")
	}
	refused("critical statement, statement verify", "statement", "verify", stmtCrit+"statement.cose", "--key", stmtCrit+"issuer-key.jwk", "--payload", stmtCrit+"payload.bin")
	// The same checks pass on the valid vector, so the refusals are crit's.
	mustRun(t, "receipt", "verify", transparent(valid+"statement.cose", valid+"receipt.cose"), "--service-key", valid+"log-key.jwk", "--issuer-key", valid+"issuer-key.jwk", "--leaf", "ietf")

	ts := startServe(t, "--data", filepath.Join(dir, "data"), "--trust-key", stmtCrit+"issuer-key.jwk", "--trust-key", valid+"issuer-key.jwk")
	code, out, errOut := tf(t, "register", "--ts", ts, stmtCrit+"statement.cose", "--out", filepath.Join(dir, "t.cose"))
	if code != exitInvalid || !strings.Contains(out+errOut, "Unknown Critical Header") {
		t.Errorf("register of the critical statement: exit %d\n%s%s", code, out, errOut)
	}
	mustRun(t, "register", "--ts", ts, valid+"statement.cose", "--out", filepath.Join(dir, "valid.t.cose"))
}

// TestReceiptVerifyRefusesGraftedConsistencyReceipt: the service's own
// consistency receipt, with the statement's inclusion proof grafted into its
// unprotected header (its signature covers the same root), is refused by
// `receipt verify`, alone and inside a transparent statement.
func TestReceiptVerifyRefusesGraftedConsistencyReceipt(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	mustRun(t, "key", "generate", "--out", p("issuer.jwk"), "--public-out", p("issuer.pub.jwk"))
	ts := startServe(t, "--data", p("data"), "--trust-key", p("issuer.pub.jwk"))
	os.WriteFile(p("prov.json"), []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}`), 0o644)
	mustRun(t, "statement", "sign", "--key", p("issuer.jwk"), "--issuer", "https://ci.example.org", "--subject", "sha256:00", "--payload", p("prov.json"), "--out", p("s.cose"))
	mustRun(t, "register", "--ts", ts, p("s.cose"), "--out", p("t.cose"), "--receipt-out", p("r.cose"))

	incl, _ := os.ReadFile(p("r.cose"))
	ir, err := scitt.ParseReceipt(incl)
	if err != nil {
		t.Fatal(err)
	}
	size := ir.Inclusion[0].TreeSize
	resp, err := http.Get(fmt.Sprintf("%s/consistency?from=1&to=%d", ts, size))
	if err != nil {
		t.Fatal(err)
	}
	cons, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /consistency?from=1&to=%d: %d %s", size, resp.StatusCode, cons)
	}
	cm, err := cosewire.Parse(cons, scitt.MaxReceiptSize)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := cosewire.Parse(incl, scitt.MaxReceiptSize)
	os.WriteFile(p("graft.cose"), cm.WithUnprotected(im.Unprotected), 0o644)
	stmt, _ := os.ReadFile(p("s.cose"))
	tsGraft, err := scitt.AddReceipt(stmt, cm.WithUnprotected(im.Unprotected))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p("t-graft.cose"), tsGraft, 0o644)

	mustRun(t, "receipt", "verify", "--statement", p("s.cose"), "--receipt", p("r.cose"), "--service-key", ts)
	for _, args := range [][]string{
		{"receipt", "verify", "--statement", p("s.cose"), "--receipt", p("graft.cose"), "--service-key", ts},
		{"receipt", "verify", p("t-graft.cose"), "--service-key", ts},
	} {
		code, out, errOut := tf(t, args...)
		if code == 0 || !strings.Contains(out+errOut, "receipt.kind") || !strings.Contains(out+errOut, "consistency") {
			t.Fatalf("%v: exit %d, want a refusal naming receipt.kind\n%s%s", args, code, out, errOut)
		}
	}
}
