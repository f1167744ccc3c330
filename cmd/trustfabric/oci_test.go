package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	"github.com/trustfabric/trustfabric/pkg/oci/ocitest/distreg"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

var githubEnv = map[string]string{
	"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/widgets",
	"GITHUB_SHA": "8f2b1c3d4e5f60718293a4b5c6d7e8f901234567", "GITHUB_REF": "refs/heads/main", "GITHUB_EVENT_NAME": "push",
	"GITHUB_WORKFLOW_REF": "acme/widgets/.github/workflows/release.yml@refs/heads/main",
	"GITHUB_RUN_ID":       "42", "GITHUB_RUN_ATTEMPT": "1", "RUNNER_ENVIRONMENT": "github-hosted",
	"GITLAB_CI": "", "TEKTON_TASKRUN_NAME": "",
}

// transparent signs preimage as a hash-envelope statement and adds a receipt.
func transparent(t *testing.T, preimage []byte, subject string) []byte {
	t.Helper()
	ctx := context.Background()
	issuer, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := scitt.SignStatement(ctx, issuer, scitt.Claims{Issuer: "spiffe://ci.example.org/github/acme/widgets",
		Subject: subject, IssuedAt: time.Unix(1772366400, 0)}, preimage, scitt.WithContentType("application/vnd.in-toto+json"))
	if err != nil {
		t.Fatal(err)
	}
	entry, err := scitt.EntryHash(stmt)
	if err != nil {
		t.Fatal(err)
	}
	leaf := sha256.Sum256(append([]byte{0}, entry[:]...))
	rcpt, err := scitt.IssueReceipt(ctx, ts, scitt.ReceiptClaims{Issuer: "https://ts.example.org",
		Subject: hex.EncodeToString(entry[:]), IssuedAt: time.Unix(1772366460, 0)}, scitt.InclusionProof{TreeSize: 1}, leaf[:])
	if err != nil {
		t.Fatal(err)
	}
	out, err := scitt.AddReceipt(stmt, rcpt)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestProvenanceAttachDiscover runs provenance → (sign, receipt) → attach → discover
// through the CLI against both kinds of registry.
func TestProvenanceAttachDiscover(t *testing.T) {
	for k, v := range githubEnv {
		t.Setenv(k, v)
	}
	for _, tc := range []struct {
		name string
		reg  func() *ocitest.Registry
		mode string
	}{
		{"olareg", func() *ocitest.Registry { return ocitest.NewOlareg(nil) }, "referrers-api"},
		{"distribution", func() *ocitest.Registry { return ocitest.Serve(distreg.NewHandler(context.Background()), nil) }, "tag-schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := tc.reg()
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
			dir := t.TempDir()
			pre := filepath.Join(dir, "provenance.json")
			mustRun(t, "provenance", "--subject", tag, "--out", pre)
			preimage, err := os.ReadFile(pre)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(preimage), dig.Hex) || !strings.Contains(string(preimage), "https://slsa.dev/provenance/v1") {
				t.Fatalf("provenance does not name the image digest: %s", preimage)
			}
			stmtPath := filepath.Join(dir, "statement.cose")
			imgRef := reg.Host + "/acme/widgets@" + dig.String()
			if err := os.WriteFile(stmtPath, transparent(t, preimage, "oci://"+imgRef), 0o600); err != nil {
				t.Fatal(err)
			}
			out := mustRun(t, "attach", imgRef, "--statement", stmtPath, "--preimage", pre)
			if !strings.Contains(out, tc.mode) {
				t.Errorf("attach output %q lacks mode %s", out, tc.mode)
			}
			js := mustRun(t, "discover", tag, "--output", "json")
			var got struct {
				Image     string
				Mode      string
				Referrers []oci.ListedReferrer
			}
			if err := json.Unmarshal([]byte(js), &got); err != nil {
				t.Fatal(err)
			}
			if got.Image != imgRef || got.Mode != tc.mode || len(got.Referrers) != 1 {
				t.Fatalf("discover = %s", js)
			}
			r := got.Referrers[0]
			if r.Issuer != "spiffe://ci.example.org/github/acme/widgets" || r.Subject != "oci://"+imgRef ||
				len(r.TS) != 1 || r.TS[0] != "https://ts.example.org" || r.Created != "2026-03-01T12:01:00Z" ||
				r.PredicateType != "https://slsa.dev/provenance/v1" || len(r.EntryID) != 64 {
				t.Errorf("referrer %+v", r)
			}
			if text := mustRun(t, "discover", imgRef); !strings.Contains(text, "https://ts.example.org") {
				t.Errorf("text output lacks the TS: %s", text)
			}
			// A preimage that is not the one signed is refused (exit 2), nothing attached.
			other := filepath.Join(dir, "other.json")
			if err := os.WriteFile(other, []byte(strings.Replace(string(preimage), "refs/heads/main", "refs/heads/evil", 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			if code, _, _ := tf(t, "attach", imgRef, "--statement", stmtPath, "--preimage", other); code != exitUsage {
				t.Errorf("mismatched preimage: exit %d, want %d", code, exitUsage)
			}
			if code, _, _ := tf(t, "attach", reg.Host+"/acme/widgets@sha256:"+strings.Repeat("0", 64), "--statement", stmtPath, "--preimage", pre); code != exitUsage {
				t.Errorf("missing image: exit %d", code)
			}
		})
	}
}

// TestExternalRegistry attaches three statements to an image on the registry named by
// TRUSTFABRIC_TEST_REGISTRY (host:port, plain HTTP) and writes the image reference to
// TRUSTFABRIC_TEST_OUT, for .ci/oci.sh to check with `oras discover`.
func TestExternalRegistry(t *testing.T) {
	host, outFile := os.Getenv("TRUSTFABRIC_TEST_REGISTRY"), os.Getenv("TRUSTFABRIC_TEST_OUT")
	if host == "" || outFile == "" {
		t.Skip("TRUSTFABRIC_TEST_REGISTRY and TRUSTFABRIC_TEST_OUT not set: no external registry (run .ci/oci.sh)")
	}
	for k, v := range githubEnv {
		t.Setenv(k, v)
	}
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag := host + "/acme/widgets:v1"
	ref, _ := name.ParseReference(tag, name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	dig, _ := img.Digest()
	imgRef := host + "/acme/widgets@" + dig.String()
	dir := t.TempDir()
	pre := filepath.Join(dir, "provenance.json")
	mustRun(t, "provenance", "--subject", tag, "--out", pre, "--insecure-registry", host)
	preimage, err := os.ReadFile(pre)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		stmtPath := filepath.Join(dir, "statement.cose")
		if err := os.WriteFile(stmtPath, transparent(t, preimage, "oci://"+imgRef), 0o600); err != nil {
			t.Fatal(err)
		}
		if out := mustRun(t, "attach", imgRef, "--statement", stmtPath, "--preimage", pre, "--insecure-registry", host); i == 0 {
			t.Log(out)
		}
	}
	if err := os.WriteFile(outFile, []byte(imgRef), 0o600); err != nil {
		t.Fatal(err)
	}
}
