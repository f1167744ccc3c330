package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// tf runs the CLI in-process and returns its exit code and output.
func tf(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := tf(t, args...)
	if code != 0 {
		t.Fatalf("trustfabric %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// TestStatementLifecycle is the issue's end-to-end: a statement signed by
// the CLI verifies with the CLI, gets a receipt, verifies as a transparent
// statement, and comes back byte-exactly when the receipt is removed.
func TestStatementLifecycle(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	mustRun(t, "key", "generate", "--out", p("issuer.jwk"), "--public-out", p("issuer.pub.jwk"))
	if fi, err := os.Stat(p("issuer.jwk")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode: %v %v", fi.Mode(), err)
	}
	mustRun(t, "key", "generate", "--out", p("ts.cose"), "--public-out", p("ts.pub.cose"), "--format", "cose")
	prov := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`)
	if err := os.WriteFile(p("prov.json"), prov, 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "statement", "sign", "--key", p("issuer.jwk"), "--issuer", "https://ci.example.org/job", "--subject", "sha256:1234",
		"--payload", p("prov.json"), "--location", "oci://r.example/x@sha256:1234", "--out", p("s.cose"))
	out := mustRun(t, "statement", "verify", p("s.cose"), "--key", p("issuer.pub.jwk"), "--payload", p("prov.json"))
	if !strings.Contains(out, "ok   statement.preimage") {
		t.Errorf("verify output lacks the preimage check:\n%s", out)
	}
	insp := mustRun(t, "inspect", p("s.cose"))
	for _, want := range []string{"type: signed-statement", "application/vnd.in-toto+json", "iss (1): https://ci.example.org/job", "payload_location (260)"} {
		if !strings.Contains(insp, want) {
			t.Errorf("inspect lacks %q:\n%s", want, insp)
		}
	}

	// A wrong preimage is invalid (exit 1); a missing file is a usage error (exit 2).
	if err := os.WriteFile(p("other.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := tf(t, "statement", "verify", p("s.cose"), "--key", p("issuer.pub.jwk"), "--payload", p("other.json")); code != exitInvalid {
		t.Errorf("wrong preimage: exit %d, want 1", code)
	}
	if code, _, _ := tf(t, "statement", "verify", p("missing.cose"), "--key", p("issuer.pub.jwk")); code != exitUsage {
		t.Errorf("missing file: exit %d, want 2", code)
	}

	// Register it in a small log and attach the receipt.
	stmt, _ := os.ReadFile(p("s.cose"))
	tsKey, err := keys.LoadPrivate(p("ts.cose"))
	if err != nil {
		t.Fatal(err)
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	tree.AppendData([]byte("a"), []byte("b"))
	tree.Append(scitt.LeafHash(stmt, scitt.LeafIETF))
	tree.AppendData([]byte("c"))
	path, err := tree.InclusionProof(2, 4)
	if err != nil {
		t.Fatal(err)
	}
	receipt, err := scitt.IssueReceipt(context.Background(), tsKey, scitt.ReceiptClaims{Issuer: "https://ts.example.org", IssuedAt: time.Now()}, scitt.InclusionProof{TreeSize: 4, LeafIndex: 2, Path: path}, tree.Hash())
	if err != nil {
		t.Fatal(err)
	}
	transparent, err := scitt.AddReceipt(stmt, receipt)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p("t.cose"), transparent, 0o644)
	os.WriteFile(p("r.cose"), receipt, 0o644)
	mustRun(t, "receipt", "verify", p("t.cose"), "--service-key", p("ts.pub.cose"), "--issuer-key", p("issuer.pub.jwk"))
	mustRun(t, "receipt", "verify", "--statement", p("s.cose"), "--receipt", p("r.cose"), "--service-key", p("ts.pub.cose"))
	if code, out, _ := tf(t, "receipt", "verify", p("t.cose"), "--service-key", p("ts.pub.cose"), "--leaf", "direct"); code != exitInvalid {
		t.Errorf("wrong leaf convention: exit %d\n%s", code, out)
	}
	if code, _, _ := tf(t, "receipt", "verify", p("t.cose"), "--service-key", p("issuer.pub.jwk")); code != exitInvalid {
		t.Errorf("receipt with the wrong service key: exit %d, want 1", code)
	}
	insp = mustRun(t, "inspect", p("t.cose"), "--output", "json")
	if !strings.Contains(insp, `"type": "transparent-statement"`) || !strings.Contains(insp, `"kind": "inclusion"`) {
		t.Errorf("inspect json:\n%s", insp)
	}
	back, err := scitt.RemoveReceipts(transparent)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, stmt) {
		t.Fatal("removing the receipt did not restore the statement byte-exactly")
	}
}

func TestEmbeddedAndContentType(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	mustRun(t, "key", "generate", "--out", p("k.jwk"), "--public-out", p("k.pub"), "--alg", "EdDSA")
	os.WriteFile(p("data.bin"), []byte{0, 1, 2}, 0o644)
	mustRun(t, "statement", "sign", "--key", p("k.jwk"), "--issuer", "i", "--subject", "s", "--payload", p("data.bin"), "--embed", "--out", p("e.cose"))
	mustRun(t, "statement", "verify", p("e.cose"), "--key", p("k.pub"), "--payload", p("data.bin"))
	insp := mustRun(t, "inspect", p("e.cose"))
	if !strings.Contains(insp, "content_type (3): application/octet-stream") || strings.Contains(insp, "payload_hash_alg") {
		t.Errorf("embedded statement:\n%s", insp)
	}
}

func TestInspectVectors(t *testing.T) {
	root := "../../testdata"
	for _, set := range []string{"scitt-cose-v1", "trustfabric-v1"} {
		dirs, err := os.ReadDir(filepath.Join(root, set))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			if !d.IsDir() {
				continue
			}
			for _, f := range []string{"statement.cose", "receipt.cose"} {
				path := filepath.Join(root, set, d.Name(), f)
				code, out, errOut := tf(t, "inspect", path, "--output", "json")
				malformed := strings.HasPrefix(d.Name(), "fail-truncated") || strings.HasPrefix(d.Name(), "fail-trailing") || strings.HasPrefix(d.Name(), "fail-untagged")
				if f == "statement.cose" && malformed {
					if code != exitUsage || !strings.Contains(errOut, "malformed") {
						t.Errorf("%s: exit %d, stderr %q", path, code, errOut)
					}
					continue
				}
				// inspect refuses what no verifier may process (RFC 9052
				// §3.1), saying which critical header it does not know.
				critical := (f == "statement.cose" && d.Name() == "fail-critical-unknown-header") || (f == "receipt.cose" && d.Name() == "fail-receipt-critical-unknown-header")
				if critical {
					if code != exitUsage || !strings.Contains(errOut, "critical header") {
						t.Errorf("%s: exit %d, stderr %q", path, code, errOut)
					}
					continue
				}
				if code != 0 || !strings.Contains(out, `"type"`) {
					t.Errorf("%s: exit %d\n%s", path, code, errOut)
				}
			}
		}
	}
}
