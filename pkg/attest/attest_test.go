package attest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/provenance"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/trustfabric/trustfabric/pkg/witstatement"
)

func startEnv(t testing.TB, cfg servertest.Config) *servertest.Env {
	t.Helper()
	cfg.Dir = t.TempDir()
	env, err := servertest.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start environment: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("close environment: %v", err)
		}
	})
	return env
}

func options(env *servertest.Env, image string) attest.Options {
	return attest.Options{
		Image: image, TS: env.TSURL, IdentityServer: env.IdentityURL,
		Getenv: env.Getenv, Out: &bytes.Buffer{},
	}
}

// TestAttestGitHubEndToEnd runs the whole flow in a fake GitHub Actions job
// against the real Identity Server, Transparency Service and registry, then
// checks what a verifier would: the referrer is discoverable, its statement
// verifies against the identity bundle and its receipt against the service's
// keys, and the job got its outputs and summary.
func TestAttestGitHubEndToEnd(t *testing.T) {
	env := startEnv(t, servertest.Config{})
	ctx := t.Context()
	o := options(env, env.ImageTag)
	o.StatementOut = filepath.Join(t.TempDir(), "statement.cose")
	var progress []string
	o.Progress = func(s attest.Step) { progress = append(progress, s.Name) }
	res, err := attest.Run(ctx, o)
	if err != nil {
		t.Fatalf("attest: %v", err)
	}
	if got, want := strings.Join(progress, ","), "identity,provenance,sign,register,attach"; got != want {
		t.Errorf("steps = %s, want %s", got, want)
	}
	if _, want, _ := strings.Cut(env.Image, "@"); res.Digest != want {
		t.Errorf("digest = %s, want %s (the tag was not resolved to the pushed image)", res.Digest, want)
	}
	if want := "oci://" + env.Image; res.Subject != want {
		t.Errorf("subject = %s, want %s", res.Subject, want)
	}
	if want := "spiffe://ci.example.org/github/acme/widgets/.github/workflows/release.yml/refs/heads/main"; res.WorkloadID != want {
		t.Errorf("workload id = %s, want %s", res.WorkloadID, want)
	}
	if res.TreeSize <= res.LogIndex {
		t.Errorf("log index %d not inside tree size %d", res.LogIndex, res.TreeSize)
	}

	// The referrer is discoverable, with its content.
	c, err := oci.New()
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Discover(ctx, env.Image, oci.WithContent())
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	if len(d.Entries) != 1 {
		t.Fatalf("%d referrers, want 1", len(d.Entries))
	}
	e := d.Entries[0]
	if e.Err != nil {
		t.Fatalf("referrer: %v", e.Err)
	}
	if e.Descriptor.Digest != res.ReferrerDigest {
		t.Errorf("referrer digest %s, result says %s", e.Descriptor.Digest, res.ReferrerDigest)
	}
	if e.Annotations.EntryID != res.EntryID || e.Annotations.Issuer != res.WorkloadID ||
		e.Annotations.Subject != res.Subject || e.Annotations.PredicateType != provenance.PredicateSLSAv1 ||
		len(e.Annotations.TS) != 1 || e.Annotations.TS[0] != env.TSURL {
		t.Errorf("annotations = %+v", e.Annotations)
	}

	// Its statement verifies against the identity bundle, with the preimage,
	// at the receipt's registration time.
	si, err := witstatement.Verify(e.Statement, wimse.Bundles{env.Bundle},
		witstatement.WithReceipts(env.TSKeys, scitt.LeafIETF), witstatement.WithPreimage(e.Preimage))
	if err != nil {
		t.Fatalf("statement does not verify against the identity bundle: %v", err)
	}
	if si.Source != "receipt" {
		t.Errorf("WIT validity checked at %q time, want the receipt's", si.Source)
	}
	if si.Statement.Subject != res.Subject || si.Statement.PreimageContentType != provenance.MediaType {
		t.Errorf("statement sub %q, 259 %q", si.Statement.Subject, si.Statement.PreimageContentType)
	}
	// Its receipt verifies against the service's keys, fetched independently.
	keys, err := scrapi.FetchKeys(ctx, env.TSURL)
	if err != nil {
		t.Fatal(err)
	}
	receipts, err := scitt.Receipts(e.Statement)
	if err != nil || len(receipts) != 1 {
		t.Fatalf("receipts: %d, %v", len(receipts), err)
	}
	r, err := scitt.ParseReceipt(receipts[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.VerifyInclusion(e.Statement, keys, scitt.LeafIETF); err != nil {
		t.Fatalf("receipt: %v", err)
	}
	entry, err := scitt.EntryHash(e.Statement)
	if err != nil {
		t.Fatal(err)
	}
	// The receipt shares its checkpoint's signature (no per-entry sub); the
	// inclusion proof that verified above binds it to this entry.
	if r.Inclusion[0].LeafIndex != res.LogIndex || fmt.Sprintf("%x", entry[:]) != res.EntryID || r.Subject != "" {
		t.Errorf("receipt index %d sub %q; result %d %s; entry %x", r.Inclusion[0].LeafIndex, r.Subject, res.LogIndex, res.EntryID, entry[:])
	}
	// The preimage is the SLSA provenance of this run.
	st, err := provenance.ParseStatement(e.Preimage)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Covers(provenance.Subject{Digest: map[string]string{"sha256": strings.TrimPrefix(res.Digest, "sha256:")}}) {
		t.Errorf("provenance subjects %+v lack the image", st.Subjects)
	}
	// --statement-out holds the same transparent statement.
	saved, err := os.ReadFile(o.StatementOut)
	if err != nil || !bytes.Equal(saved, e.Statement) {
		t.Errorf("statement-out differs from the attached statement (%v)", err)
	}

	// The job's outputs and summary.
	if _, err := attest.WriteOutputs(res, nil, attest.OutputOptions{Getenv: env.Getenv}); err != nil {
		t.Fatalf("outputs: %v", err)
	}
	out := readFile(t, env.Getenv("GITHUB_OUTPUT"))
	for k, v := range map[string]string{"entry-id": res.EntryID, "log-index": itoa(res.LogIndex),
		"referrer-digest": res.ReferrerDigest, "statement-path": o.StatementOut} {
		if got := githubOutput(out, k); got != v {
			t.Errorf("GITHUB_OUTPUT %s = %q, want %q", k, got, v)
		}
	}
	if sum := readFile(t, env.Getenv("GITHUB_STEP_SUMMARY")); !strings.Contains(sum, res.EntryID) || !strings.Contains(sum, "attested") {
		t.Errorf("summary lacks the entry id:\n%s", sum)
	}
}

// TestAttestUnreachableTS: a dead Transparency Service is a clear error in the
// register step, and nothing is attached to the image.
func TestAttestUnreachableTS(t *testing.T) {
	env := startEnv(t, servertest.Config{})
	o := options(env, env.Image)
	o.TS = "http://127.0.0.1:1" // nothing listens on port 1
	o.TSOptions = []scrapi.Option{scrapi.WithRetries(0)}
	res, err := attest.Run(t.Context(), o)
	var se *attest.StepError
	if !errors.As(err, &se) || se.Step != attest.StepRegister {
		t.Fatalf("err = %v, want a register step error", err)
	}
	if errors.Is(err, attest.ErrNotAttached) || errors.Is(err, attest.ErrRefused) {
		t.Errorf("an unreachable service is neither refused nor registered: %v", err)
	}
	if res.Attached() || res.EntryID == "" {
		t.Errorf("result = %+v", res)
	}
	assertNoReferrers(t, env.Image)
}

// TestAttestRegistryGoneAfterRegistration: the registry disappears between
// registration and attach; the error says the statement is registered but
// not attached, names the entry, and the statement is saved for a retry.
func TestAttestRegistryGoneAfterRegistration(t *testing.T) {
	env := startEnv(t, servertest.Config{})
	o := options(env, env.ImageTag)
	o.Progress = func(s attest.Step) {
		if s.Name == attest.StepRegister {
			env.Registry.Close()
		}
	}
	res, err := attest.Run(t.Context(), o)
	var na *attest.NotAttachedError
	if !errors.As(err, &na) || !errors.Is(err, attest.ErrNotAttached) {
		t.Fatalf("err = %v, want NotAttachedError", err)
	}
	if na.EntryID == "" || na.EntryID != res.EntryID {
		t.Errorf("entry id %q, result %q", na.EntryID, res.EntryID)
	}
	for _, want := range []string{res.EntryID, "trustfabric attach", na.StatementPath} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	saved, rerr := os.ReadFile(na.StatementPath)
	if rerr != nil || !bytes.Equal(saved, res.Statement) {
		t.Fatalf("saved statement: %v", rerr)
	}
	os.RemoveAll(filepath.Dir(na.StatementPath))
	// The service has the entry: its receipt can be fetched again.
	c, _ := scrapi.NewClient(env.TSURL)
	if _, err := c.Receipt(t.Context(), res.EntryID); err != nil {
		t.Errorf("the entry is not registered: %v", err)
	}
}

// TestAttestRefusedWithoutWIMSE: a registration that does not carry WIMSE
// headers is refused by a service requiring them. A static-key identity
// (no WIT) never sends them.
func TestAttestRefusedByService(t *testing.T) {
	env := startEnv(t, servertest.Config{})
	key, err := keys.Generate(-7)
	if err != nil {
		t.Fatal(err)
	}
	o := options(env, env.Image)
	o.Credentials = staticCredentials(key, "spiffe://ci.example.org/static")
	_, err = attest.Run(t.Context(), o)
	if !errors.Is(err, attest.ErrRefused) {
		t.Fatalf("err = %v, want ErrRefused", err)
	}
	assertNoReferrers(t, env.Image)
}

// TestAttestSuppliedPredicate: a bare predicate is wrapped in a statement about
// the image; a statement about another artifact is refused before signing.
func TestAttestSuppliedPredicate(t *testing.T) {
	env := startEnv(t, servertest.Config{})
	dir := t.TempDir()
	bare := filepath.Join(dir, "vuln.json")
	os.WriteFile(bare, []byte(`{"scanner": {"uri": "pkg:github/aquasecurity/trivy"}, "result": []}`), 0o644)

	o := options(env, env.Image)
	o.PredicateFile = bare
	if _, err := attest.Run(t.Context(), o); !errors.Is(err, attest.ErrInput) {
		t.Errorf("bare predicate without a type: err = %v, want ErrInput", err)
	}
	o.PredicateType = "https://in-toto.io/attestation/vulns/v0.1"
	res, err := attest.Run(t.Context(), o)
	if err != nil {
		t.Fatalf("attest: %v", err)
	}
	st, err := provenance.ParseStatement(res.Preimage)
	if err != nil || st.PredicateType != o.PredicateType {
		t.Fatalf("preimage %s: %v", res.Preimage, err)
	}

	other := filepath.Join(dir, "other.json")
	os.WriteFile(other, []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"`+
		strings.Repeat("ab", 32)+`"}}],"predicateType":"https://example.com/p","predicate":{}}`), 0o644)
	o.PredicateFile = other
	res, err = attest.Run(t.Context(), o)
	if !errors.Is(err, provenance.ErrSubjectNotCovered) || res.EntryID != "" {
		t.Errorf("foreign statement: err = %v, entry %q", err, res.EntryID)
	}
}

func assertNoReferrers(t *testing.T, image string) {
	t.Helper()
	c, err := oci.New()
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Discover(t.Context(), image)
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	if len(d.Entries) != 0 {
		t.Errorf("%d referrers attached, want none", len(d.Entries))
	}
}

// TestAttestRetryAfterRegistryFailure: the registry refuses writes during the
// attach; the saved statement and preimage are then attached by the retry the
// error names (what `trustfabric attach` does) and verify.
func TestAttestRetryAfterRegistryFailure(t *testing.T) {
	var refuse atomic.Bool
	env := startEnv(t, servertest.Config{RegistryMiddleware: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if refuse.Load() && r.Method != http.MethodGet && r.Method != http.MethodHead {
				http.Error(w, `{"errors":[{"code":"DENIED","message":"read-only"}]}`, http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	o := options(env, env.Image)
	o.StatementOut = filepath.Join(t.TempDir(), "s.cose")
	o.Progress = func(s attest.Step) { refuse.Store(s.Name == attest.StepRegister) }
	res, err := attest.Run(t.Context(), o)
	var na *attest.NotAttachedError
	if !errors.As(err, &na) {
		t.Fatalf("err = %v, want NotAttachedError", err)
	}
	if na.StatementPath != o.StatementOut || na.PreimagePath != o.StatementOut+attest.PreimageSuffix {
		t.Errorf("saved to %s and %s, want --statement-out", na.StatementPath, na.PreimagePath)
	}
	assertNoReferrers(t, env.Image)

	refuse.Store(false)
	c, _ := oci.New()
	stmt, pre := []byte(readFile(t, na.StatementPath)), []byte(readFile(t, na.PreimagePath))
	if _, err := c.Attach(t.Context(), na.Image, oci.Attachment{Statement: stmt, Preimage: pre}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	d, err := c.Discover(t.Context(), env.Image, oci.WithContent())
	if err != nil || len(d.Entries) != 1 {
		t.Fatalf("discover after retry: %v", err)
	}
	if _, err := witstatement.Verify(d.Entries[0].Statement, wimse.Bundles{env.Bundle},
		witstatement.WithReceipts(env.TSKeys, scitt.LeafIETF), witstatement.WithPreimage(d.Entries[0].Preimage)); err != nil {
		t.Errorf("retried referrer does not verify: %v", err)
	}
	if !bytes.Equal(d.Entries[0].Statement, res.Statement) {
		t.Error("retried referrer is not the registered statement")
	}
}
