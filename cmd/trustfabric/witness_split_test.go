package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	f_note "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/quickstart"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/witnesstest"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// splitIssuer is the Transparency Service identity both views of the split
// log share (same key, same origin, same issuer).
const splitIssuer = "https://ts.split.test"

// splitView is a witnessed log whose data directory was copied after a
// first registration: the honest copy (fail closed) and the fork (same
// keys, failing open so that it publishes what no witness cosigns) grow
// differently. Registrations go through the real CLI (`attest`) with WITs
// from env's Identity Server.
type splitView struct {
	env            *servertest.Env
	w              [2]*witnesstest.Witness
	honest, fork   *transparency.Service
	honestURL      string
	forkURL        string
	dir, policyDoc string
}

func openSplitTS(t *testing.T, dir string, bundle *wimse.Bundle, ws [2]*witnesstest.Witness, failOpen bool) (*transparency.Service, string) {
	t.Helper()
	pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, nil, wimse.Bundles{bundle})
	if err != nil {
		t.Fatal(err)
	}
	wit := &transparency.Witnessing{Threshold: 2, FailOpen: failOpen, Timeout: "2s"}
	for _, w := range ws {
		wit.Witnesses = append(wit.Witnesses, transparency.WitnessEndpoint{URL: w.URL, Key: w.VKey})
	}
	svc, err := transparency.Open(t.Context(), transparency.Options{Dir: dir, Policy: pol, Issuer: splitIssuer, Witnessing: wit})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler(transparency.HandlerOptions{}))
	t.Cleanup(func() {
		srv.Close()
		_ = svc.Close(context.Background())
	})
	return svc, srv.URL
}

func newSplitView(t *testing.T) *splitView {
	t.Helper()
	ctx := t.Context()
	s := &splitView{dir: t.TempDir()}
	env, err := servertest.Start(ctx, servertest.Config{Dir: filepath.Join(s.dir, "env")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	s.env = env
	for k, v := range env.Vars {
		t.Setenv(k, v)
	}
	for i, name := range []string{"w1.test", "w2.test"} {
		w, err := witnesstest.New(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
		s.w[i] = w
	}
	tsDir := filepath.Join(s.dir, "ts")
	vkey, err := transparency.InitLogKey(transparency.Options{Dir: tsDir, Issuer: splitIssuer})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range s.w {
		if err := w.AddLog(vkey); err != nil {
			t.Fatal(err)
		}
	}
	// One entry before the fork, cosigned by both witnesses.
	svc, url := openSplitTS(t, tsDir, env.Bundle, s.w, false)
	mustRun(t, "attest", env.ImageTag, "--ts", url, "--identity-server", env.IdentityURL)
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	forkDir := filepath.Join(s.dir, "fork")
	if err := os.CopyFS(forkDir, os.DirFS(tsDir)); err != nil {
		t.Fatal(err)
	}
	s.honest, s.honestURL = openSplitTS(t, tsDir, env.Bundle, s.w, false)
	s.fork, s.forkURL = openSplitTS(t, forkDir, env.Bundle, s.w, true)

	// The gate's policy: for this service's keys (the fork's are the same).
	s.policyDoc = splitPolicy(t, s.dir, env, s.honest)
	return s
}

// splitPolicy writes into dir the quickstart's policy for env's identities
// and the service svc (issuer splitIssuer) and returns it.
func splitPolicy(t *testing.T, dir string, env *servertest.Env, svc *transparency.Service) string {
	t.Helper()
	p, err := quickstart.WritePolicy(dir, env)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keys.MarshalCOSEKeySet(svc.Keys())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ts-keys.cbor"), ks, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(b), "issuer: "+env.TSURL+"\n", "issuer: "+splitIssuer+"\n", 1)
	if doc == string(b) {
		t.Fatal("the quickstart policy changed shape")
	}
	return doc
}

// TestGateFailOpenWitnessDown: a service failing open publishes a
// checkpoint one of its two witnesses did not cosign (and counts it); the
// image attested then is denied by `verify --offline` with threshold 2,
// naming the witnesses check, and allowed with threshold 1 of the witness
// that is up: the gate, not the service, decides how many it needs.
func TestGateFailOpenWitnessDown(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	env, err := servertest.Start(ctx, servertest.Config{Dir: filepath.Join(dir, "env")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	for k, v := range env.Vars {
		t.Setenv(k, v)
	}
	var ws [2]*witnesstest.Witness
	for i, name := range []string{"w1.test", "w2.test"} {
		if ws[i], err = witnesstest.New(name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ws[i].Close)
	}
	tsDir := filepath.Join(dir, "ts")
	vkey, err := transparency.InitLogKey(transparency.Options{Dir: tsDir, Issuer: splitIssuer})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if err := w.AddLog(vkey); err != nil {
			t.Fatal(err)
		}
	}
	svc, url := openSplitTS(t, tsDir, env.Bundle, ws, true)
	base := []byte(splitPolicy(t, dir, env, svc))
	both := writeWitnessPolicy(t, base, filepath.Join(dir, "both.yaml"), ws[0].VKey, ws[1].VKey)
	first := writeWitnessPolicyN(t, base, filepath.Join(dir, "first.yaml"), 1, ws[0].VKey)

	mustRun(t, "attest", env.ImageTag, "--ts", url, "--identity-server", env.IdentityURL)
	if out := mustRun(t, "verify", env.Image, "--policy", both, "--offline"); !strings.Contains(out, "ok   witnesses: ") {
		t.Fatalf("both witnesses up:\n%s", out)
	}
	ws[1].Down.Store(true)
	image, err := servertest.PushRandomImage(ctx, env.RegistryHost+"/"+servertest.DefaultRepository+":open")
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, "attest", image, "--ts", url, "--identity-server", env.IdentityURL) // published anyway
	if svc.UnwitnessedCheckpoints() == 0 {
		t.Fatal("a checkpoint published below the threshold was not counted")
	}
	code, out, errOut := tf(t, "verify", image, "--policy", both, "--offline")
	if code != exitInvalid || !strings.Contains(out, "FAIL witnesses: ") || !strings.Contains(errOut, ": witnesses: ") {
		t.Errorf("threshold 2 with one witness down at publication: exit %d\n%s%s", code, out, errOut)
	}
	if out := mustRun(t, "verify", image, "--policy", first, "--offline"); !strings.Contains(out, "ok   witnesses: ") {
		t.Errorf("threshold 1 of the witness that was up:\n%s", out)
	}
	ws[1].Down.Store(false)
}

// policyFile writes the policy, with `witnesses: {keys, threshold: 2}` when
// keys are given, and returns its path.
func (s *splitView) policyFile(t *testing.T, name string, keys ...string) string {
	t.Helper()
	p := filepath.Join(s.dir, name)
	if len(keys) > 0 {
		return writeWitnessPolicy(t, []byte(s.policyDoc), p, keys...)
	}
	if err := os.WriteFile(p, []byte(s.policyDoc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// attestNew pushes a new image and attests it through the service at ts,
// keeping the transparent statement; it returns the image by digest and the
// statement's evidence.
func (s *splitView) attestNew(t *testing.T, tag, ts string) (string, policy.Evidence) {
	t.Helper()
	image, err := servertest.PushRandomImage(t.Context(), s.env.RegistryHost+"/"+servertest.DefaultRepository+":"+tag)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(s.dir, tag+".cose")
	mustRun(t, "attest", image, "--ts", ts, "--identity-server", s.env.IdentityURL, "--statement-out", out)
	stmt, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pre, err := os.ReadFile(out + attest.PreimageSuffix)
	if err != nil {
		t.Fatal(err)
	}
	return image, policy.Evidence{Source: out, Statement: stmt, Preimage: pre}
}

// receiptOf is the one receipt of a transparent statement.
func receiptOf(t *testing.T, stmt []byte) *scitt.Receipt {
	t.Helper()
	rs, err := scitt.Receipts(stmt)
	if err != nil || len(rs) != 1 {
		t.Fatalf("%d receipts: %v", len(rs), err)
	}
	r, err := scitt.ParseReceipt(rs[0])
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// withCheckpoint is the evidence with its receipt carrying checkpoint
// instead (the receipt's signed bytes unchanged).
func withCheckpoint(t *testing.T, e policy.Evidence, checkpoint []byte) policy.Evidence {
	t.Helper()
	r, err := receiptOf(t, e.Statement).WithCheckpoint(checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	bare, err := scitt.RemoveReceipts(e.Statement)
	if err != nil {
		t.Fatal(err)
	}
	if e.Statement, err = scitt.AddReceipt(bare, r); err != nil {
		t.Fatal(err)
	}
	return e
}

// splitNote splits a signed note into its text and its signature lines.
func splitNote(t *testing.T, b []byte) (string, []note.Signature) {
	t.Helper()
	text, sigs, ok := strings.Cut(string(b), "\n\n")
	if !ok {
		t.Fatalf("not a signed note: %q", b)
	}
	var out []note.Signature
	for _, line := range strings.Split(strings.TrimSuffix(sigs, "\n"), "\n") {
		rest, ok := strings.CutPrefix(line, "— ")
		name, b64, ok2 := strings.Cut(rest, " ")
		raw, err := base64.StdEncoding.DecodeString(b64)
		if !ok || !ok2 || err != nil || len(raw) < 4 {
			t.Fatalf("signature line %q", line)
		}
		out = append(out, note.Signature{Name: name, Hash: binary.BigEndian.Uint32(raw), Base64: b64})
	}
	return text + "\n", out
}

// TestGateDeniesASplitView: a real forked log (the data directory of a
// witnessed log copied, both copies growing with different entries, same
// keys) gives valid receipts on both sides. The gate without a witness
// policy allows the fork's image (that is the split view); with
// `witnesses: {threshold: 2}` it allows the honest branch, which the
// witnesses cosigned, and denies the fork, naming the witness check: the
// witnesses refused its checkpoint (not consistent with the one they
// cosigned), so its receipt carries no quorum, and the honest cosigned
// checkpoint does not fit its tree. Real receipts carrying a forged
// cosignature, or a cosignature by a key the policy does not trust, are
// denied the same way. Through policy.Verifier and `verify --offline`.
func TestGateDeniesASplitView(t *testing.T) {
	s := newSplitView(t)
	ctx := t.Context()
	honestImage, honestEv := s.attestNew(t, "honest", s.honestURL)
	forkImage, forkEv := s.attestNew(t, "forked", s.forkURL)
	hr, fr := receiptOf(t, honestEv.Statement), receiptOf(t, forkEv.Statement)
	if hr.Inclusion[0].TreeSize != fr.Inclusion[0].TreeSize || bytes.Equal(hr.Checkpoint, fr.Checkpoint) {
		t.Fatalf("want one size, two views: sizes %d and %d", hr.Inclusion[0].TreeSize, fr.Inclusion[0].TreeSize)
	}
	if s.fork.UnwitnessedCheckpoints() == 0 {
		t.Fatal("the witnesses cosigned the fork's checkpoint")
	}

	load := func(path string) *policy.Verifier {
		p, err := policy.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		v, err := policy.NewVerifier(ctx, p, policy.WithOffline())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	witnessed := s.policyFile(t, "witnessed.yaml", s.w[0].VKey, s.w[1].VKey)
	plain, gate := load(s.policyFile(t, "plain.yaml")), load(witnessed)

	// Without witnesses, the fork is as good as the honest log.
	for _, image := range []string{s.env.Image, honestImage, forkImage} {
		if d, err := plain.Verify(ctx, image); err != nil || !d.Allowed {
			t.Fatalf("no witness policy, %s: %v %v", image, err, d.Reasons)
		}
	}
	// With them: the entry before the fork and the honest branch pass.
	for _, image := range []string{s.env.Image, honestImage} {
		if d, err := gate.Verify(ctx, image); err != nil || !d.Allowed {
			t.Fatalf("threshold 2, %s: %v %v", image, err, d.Reasons)
		}
	}

	deniedAtWitnesses := func(t *testing.T, d *policy.Decision, err error) error {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed || len(d.Candidates) != 1 {
			t.Fatalf("allowed %v with %d candidates, want deny", d.Allowed, len(d.Candidates))
		}
		ch, ok := d.Candidates[0].Failed()
		if !ok || ch.Name != policy.CheckWitnesses || !errors.Is(ch.Err(), policy.ErrWitnesses) || !errors.Is(ch.Err(), scitt.ErrWitness) {
			t.Fatalf("failed at %+v (%v), want %s wrapping ErrWitnesses and scitt.ErrWitness", ch, ch.Err(), policy.CheckWitnesses)
		}
		return ch.Err()
	}
	t.Run("fork's own checkpoint", func(t *testing.T) {
		d, err := gate.Verify(ctx, forkImage)
		deniedAtWitnesses(t, d, err)
		code, out, errOut := tf(t, "verify", forkImage, "--policy", witnessed, "--offline")
		if code != exitInvalid || !strings.HasPrefix(out, "DENY ") || !strings.Contains(out, "FAIL witnesses: ") || !strings.Contains(errOut, ": witnesses: ") {
			t.Errorf("verify the fork's image: exit %d\n%s%s", code, out, errOut)
		}
		if out := mustRun(t, "verify", honestImage, "--policy", witnessed, "--offline"); !strings.Contains(out, "ok   witnesses") {
			t.Errorf("verify the honest image:\n%s", out)
		}
	})
	t.Run("fork's receipt with the honest cosigned checkpoint", func(t *testing.T) {
		e := withCheckpoint(t, forkEv, hr.Checkpoint)
		d, err := gate.VerifyEvidence(ctx, forkImage, digestOf(t, forkImage), []policy.Evidence{e})
		deniedAtWitnesses(t, d, err)
	})

	// The honest receipt, its checkpoint tampered with.
	text, sigs := splitNote(t, hr.Checkpoint)
	if len(sigs) != 3 {
		t.Fatalf("honest checkpoint has %d signatures, want the log's and two witnesses'", len(sigs))
	}
	resign := func(sigs []note.Signature, by ...note.Signer) []byte {
		b, err := note.Sign(&note.Note{Text: text, Sigs: sigs}, by...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if got := resign(sigs); !bytes.Equal(got, hr.Checkpoint) {
		t.Fatalf("the note does not re-encode as it was:\n%s\n%s", got, hr.Checkpoint)
	}
	if d, err := gate.VerifyEvidence(ctx, honestImage, digestOf(t, honestImage), []policy.Evidence{honestEv}); err != nil || !d.Allowed {
		t.Fatalf("honest evidence: %v %v", err, d.Reasons)
	}
	t.Run("forged cosignature", func(t *testing.T) {
		forged := append([]note.Signature(nil), sigs...)
		raw, _ := base64.StdEncoding.DecodeString(forged[2].Base64)
		raw[len(raw)-1] ^= 1
		forged[2].Base64 = base64.StdEncoding.EncodeToString(raw)
		d, err := gate.VerifyEvidence(ctx, honestImage, digestOf(t, honestImage), []policy.Evidence{withCheckpoint(t, honestEv, resign(forged))})
		var bad *note.InvalidSignatureError
		if err := deniedAtWitnesses(t, d, err); !errors.As(err, &bad) {
			t.Errorf("forged cosignature: %v, want a note.InvalidSignatureError", err)
		}
	})
	t.Run("cosignature by an untrusted key", func(t *testing.T) {
		skey, _, err := note.GenerateKey(rand.Reader, sigs[2].Name)
		if err != nil {
			t.Fatal(err)
		}
		stranger, err := f_note.NewSignerForCosignatureV1(skey)
		if err != nil {
			t.Fatal(err)
		}
		// The second witness's cosignature replaced by one from another key
		// (even under the same name).
		cp := resign(sigs[:2], stranger)
		if _, after := splitNote(t, cp); len(after) != 3 {
			t.Fatalf("%d signatures", len(after))
		}
		d, err := gate.VerifyEvidence(ctx, honestImage, digestOf(t, honestImage), []policy.Evidence{withCheckpoint(t, honestEv, cp)})
		deniedAtWitnesses(t, d, err)
	})
}

// digestOf is the digest of host/repo@sha256:….
func digestOf(t *testing.T, image string) string {
	t.Helper()
	_, d, ok := strings.Cut(image, "@")
	if !ok {
		t.Fatalf("%s has no digest", image)
	}
	return d
}
