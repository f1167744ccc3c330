package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
	"github.com/trustfabric/trustfabric/pkg/provenance"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

const payloadIssuer = "https://builder.example.org"

// signer is a static issuer key and a transparency service key, both
// written as COSE_KeySet files for a policy.
type signer struct {
	issuer, ts *keys.PrivateKey
}

func newSigner(t *testing.T, dir string) *signer {
	t.Helper()
	s := &signer{}
	for i, k := range []**keys.PrivateKey{&s.issuer, &s.ts} {
		key, err := keys.Generate(cose.AlgorithmES256)
		if err != nil {
			t.Fatal(err)
		}
		key.KID = key.Public().COSEThumbprint()
		*k = key
		ks, err := keys.MarshalCOSEKeySet(keys.Set{key.Public()})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, []string{"issuer.cbor", "ts.cbor"}[i]), ks, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// transparent signs preimage (declared as contentType) about subject and
// adds a receipt of the transparency service; it returns the file written.
func (s *signer) transparent(t *testing.T, dir, file string, preimage []byte, contentType, subject string) string {
	t.Helper()
	ctx := context.Background()
	stmt, err := scitt.SignStatement(ctx, s.issuer, scitt.Claims{Issuer: payloadIssuer, Subject: subject, IssuedAt: time.Now()},
		preimage, scitt.WithContentType(contentType))
	if err != nil {
		t.Fatal(err)
	}
	entry, err := scitt.EntryHash(stmt)
	if err != nil {
		t.Fatal(err)
	}
	leaf := sha256.Sum256(append([]byte{0}, entry[:]...))
	rcpt, err := scitt.IssueReceipt(ctx, s.ts, scitt.ReceiptClaims{Issuer: "https://ts.example.org",
		Subject: hex.EncodeToString(entry[:]), IssuedAt: time.Now()}, scitt.InclusionProof{TreeSize: 1}, leaf[:])
	if err != nil {
		t.Fatal(err)
	}
	out, err := scitt.AddReceipt(stmt, rcpt)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const sbomGatePolicy = `apiVersion: trustfabric.dev/v1alpha1
kind: VerificationPolicy
transparencyServices:
  - issuer: https://ts.example.org
    keys: [ts.cbor]
issuers:
  - issuer: https://builder.example.org
    keys: [issuer.cbor]
workloads:
  - exact: https://builder.example.org
payloads:
  require:
    - name: provenance
      predicateTypes: [https://slsa.dev/provenance/v1]
    - name: sbom
      contentTypes: [application/vnd.cyclonedx+json]
  allow:
    - contentTypes: [text/plain]
`

// TestGenericPayloads: attach, discover and verify carry Signed Statements
// that are not in-toto (a plain-text note, a CycloneDX SBOM) through the CLI
// against the in-process olareg registry, and the policy requires the SBOM
// next to the provenance (deny without it, allow with it).
func TestGenericPayloads(t *testing.T) {
	for k, v := range githubEnv {
		t.Setenv(k, v)
	}
	reg := ocitest.NewOlareg(nil)
	defer reg.Close()
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag := reg.Host + "/acme/widgets:v1"
	ref, _ := name.ParseReference(tag)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	dig, _ := img.Digest()
	imgRef := reg.Host + "/acme/widgets@" + dig.String()
	subject := "oci://" + imgRef
	dir := t.TempDir()
	s := newSigner(t, dir)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	prov := filepath.Join(dir, "provenance.json")
	mustRun(t, "provenance", "--subject", tag, "--out", prov)
	provBytes, err := os.ReadFile(prov)
	if err != nil {
		t.Fatal(err)
	}
	provStmt := s.transparent(t, dir, "prov.cose", provBytes, provenance.MediaType, subject)
	note := write("note.txt", "built on a Tuesday, by hand\n")
	noteStmt := s.transparent(t, dir, "note.cose", []byte("built on a Tuesday, by hand\n"), "text/plain; charset=utf-8", subject)
	sbomJSON := `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"left-pad","version":"1.3.0"}]}`
	sbom := write("bom.cdx.json", sbomJSON)
	sbomStmt := s.transparent(t, dir, "sbom.cose", []byte(sbomJSON), provenance.ContentTypeCycloneDX, subject)
	policyFile := write("policy.yaml", sbomGatePolicy)
	if out := mustRun(t, "policy", "check", policyFile); !strings.Contains(out, "required statement sbom: predicateTypes=[] contentTypes=[application/vnd.cyclonedx+json]") {
		t.Errorf("policy check does not show the SBOM requirement:\n%s", out)
	}

	mustRun(t, "attach", imgRef, "--statement", provStmt, "--preimage", prov)
	// Before: "malformed in-toto statement" although label 259 says text/plain.
	mustRun(t, "attach", imgRef, "--statement", noteStmt, "--preimage", note)

	// Provenance and a note, no SBOM: denied, exit 1, the missing SBOM named.
	code, out, errOut := tf(t, "verify", imgRef, "--policy", policyFile, "--offline")
	if code != exitInvalid || !strings.Contains(out, "required sbom: NOT MET") || !strings.Contains(errOut, "requirement sbom") {
		t.Fatalf("verify without the SBOM: exit %d\n%s%s", code, out, errOut)
	}

	// A CycloneDX SBOM that is not JSON is refused by attach (exit 2).
	notJSON := write("bad.cdx.json", "bomFormat: CycloneDX\n")
	badStmt := s.transparent(t, dir, "bad.cose", []byte("bomFormat: CycloneDX\n"), provenance.ContentTypeCycloneDX, subject)
	if code, _, errOut := tf(t, "attach", imgRef, "--statement", badStmt, "--preimage", notJSON); code != exitUsage || !strings.Contains(errOut, "content type") {
		t.Errorf("attach of a CycloneDX SBOM that is not JSON: exit %d %s", code, errOut)
	}

	mustRun(t, "attach", imgRef, "--statement", sbomStmt, "--preimage", sbom)
	out = mustRun(t, "verify", imgRef, "--policy", policyFile, "--offline")
	if !strings.HasPrefix(out, "ALLOW ") || !strings.Contains(out, "required sbom: met by sha256:") ||
		!strings.Contains(out, "payload: application/vnd.cyclonedx+json") {
		t.Errorf("verify with the SBOM:\n%s", out)
	}
	// The budget is enforced through the CLI: an error (exit 2), not a deny.
	if code, _, errOut := tf(t, "verify", imgRef, "--policy", policyFile, "--offline", "--max-bytes", "200"); code != exitUsage || !strings.Contains(errOut, "budget") {
		t.Errorf("verify --max-bytes 200: exit %d %s", code, errOut)
	}

	js := mustRun(t, "discover", tag, "--output", "json")
	var got struct{ Referrers []oci.ListedReferrer }
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, r := range got.Referrers {
		types[r.ContentType] = r.PredicateType
		// Each referrer's layers carry a file name for oras pull, and the
		// preimage layer the declared content type.
		m, err := remote.Get(must(name.ParseReference(reg.Host + "/acme/widgets@" + r.Digest)))
		if err != nil {
			t.Fatal(err)
		}
		var man struct {
			Layers []struct {
				MediaType   string            `json:"mediaType"`
				Annotations map[string]string `json:"annotations"`
			} `json:"layers"`
		}
		if err := json.Unmarshal(m.Manifest, &man); err != nil || len(man.Layers) != 2 {
			t.Fatalf("referrer manifest %s: %v", m.Manifest, err)
		}
		want := map[string]string{provenance.MediaType: "preimage.intoto.json", "text/plain": "preimage.txt",
			provenance.ContentTypeCycloneDX: "preimage.cdx.json"}[r.ContentType]
		if man.Layers[0].Annotations["org.opencontainers.image.title"] != "statement.cose" ||
			man.Layers[1].Annotations["org.opencontainers.image.title"] != want || man.Layers[1].MediaType != r.ContentType {
			t.Errorf("layers of the %s referrer: %s", r.ContentType, m.Manifest)
		}
	}
	if len(got.Referrers) != 3 || types[provenance.MediaType] != provenance.PredicateSLSAv1 ||
		len(types) != 3 || types["text/plain"] != "" || types[provenance.ContentTypeCycloneDX] != "" {
		t.Errorf("discover: %s", js)
	}
	if text := mustRun(t, "discover", imgRef); !strings.Contains(text, "application/vnd.cyclonedx+json") || !strings.Contains(text, "text/plain") {
		t.Errorf("discover text output lacks the payload types:\n%s", text)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// dsseEnvelope signs an in-toto statement about image (repo@sha256:…) in a
// DSSE envelope with a new ECDSA key and writes the envelope and the PEM
// public key.
func dsseEnvelope(t *testing.T, dir, image string) (envFile, keyFile string) {
	t.Helper()
	repo, d, _ := strings.Cut(image, "@")
	st := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":%q,"digest":{"sha256":%q}}],"predicateType":"https://example.com/review/v1","predicate":{"ok":true}}`,
		repo, strings.TrimPrefix(d, "sha256:"))
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(provenance.PAE(provenance.MediaType, []byte(st)))
	sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	env, _ := json.Marshal(map[string]any{"payloadType": provenance.MediaType, "payload": base64.StdEncoding.EncodeToString([]byte(st)),
		"signatures": []any{map[string]string{"sig": base64.StdEncoding.EncodeToString(sig)}}})
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	envFile, keyFile = filepath.Join(dir, "envelope.json"), filepath.Join(dir, "dsse.pem")
	if err := os.WriteFile(envFile, env, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return envFile, keyFile
}
