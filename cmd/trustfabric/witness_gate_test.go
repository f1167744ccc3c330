package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	f_note "github.com/transparency-dev/formats/note"

	"github.com/trustfabric/trustfabric/pkg/credential"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/quickstart"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/witnesstest"
)

// TestGateWitnessedEndToEnd: a Transparency Service with two witnesses
// (threshold 2) issues receipts carrying the cosigned checkpoint; `verify
// --offline` with `witnesses: {keys, threshold: 2}` allows with the
// witnesses stopped (no network to them or to the service's keys), and
// denies, naming the witnesses check, when one trusted key is another one.
// `credential issue` (and credential.Issue on the decision) issues on the
// first policy and refuses on the second.
func TestGateWitnessedEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var ws []*witnesstest.Witness
	for _, name := range []string{"w1.test", "w2.test"} {
		w, err := witnesstest.New(name)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	env, err := servertest.Start(ctx, servertest.Config{Dir: filepath.Join(dir, "env"),
		Witnesses: func(vkey string) ([]transparency.WitnessEndpoint, error) {
			var out []transparency.WitnessEndpoint
			for _, w := range ws {
				if err := w.AddLog(vkey); err != nil {
					return nil, err
				}
				out = append(out, transparency.WitnessEndpoint{URL: w.URL, Key: w.VKey})
			}
			return out, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	for k, v := range env.Vars {
		t.Setenv(k, v)
	}
	mustRun(t, "attest", env.ImageTag, "--ts", env.TSURL, "--identity-server", env.IdentityURL)
	policyFile, err := quickstart.WritePolicy(dir, env)
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	withWitnesses := func(keys ...string) string {
		return writeWitnessPolicy(t, base, filepath.Join(dir, "witnessed.yaml"), keys...)
	}
	// Offline: the witnesses are gone, the service's keys are pinned.
	for _, w := range ws {
		w.Close()
	}
	out := mustRun(t, "verify", env.Image, "--policy", withWitnesses(ws[0].VKey, ws[1].VKey), "--offline")
	if !strings.HasPrefix(out, "ALLOW ") || !strings.Contains(out, "ok   witnesses") {
		t.Errorf("verify --offline with threshold 2:\n%s", out)
	}

	_, vkey, err := note.GenerateKey(rand.Reader, "stranger.test")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := f_note.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := tf(t, "verify", env.Image, "--policy", withWitnesses(ws[0].VKey, stranger), "--offline")
	if code != exitInvalid || !strings.HasPrefix(out, "DENY ") || !strings.Contains(errOut, ": witnesses: ") {
		t.Errorf("untrusted second witness: exit %d\n%s%s", code, out, errOut)
	}

	// Credential issuance runs the same gate: issued when the threshold is
	// met, refused naming the witnesses check when it is not.
	issuerKey, holderKey := filepath.Join(dir, "issuer.jwk"), filepath.Join(dir, "holder.pub.jwk")
	mustRun(t, "key", "generate", "--out", issuerKey)
	mustRun(t, "key", "generate", "--out", filepath.Join(dir, "holder.jwk"), "--public-out", holderKey)
	issued := filepath.Join(dir, "witnessed.sd-jwt")
	mustRun(t, "credential", "issue", env.Image, "--policy", withWitnesses(ws[0].VKey, ws[1].VKey), "--offline",
		"--key", issuerKey, "--holder-key", holderKey, "--out", issued)
	if _, err := os.Stat(issued); err != nil {
		t.Errorf("threshold met, no credential: %v", err)
	}
	refused := filepath.Join(dir, "refused.sd-jwt")
	code, _, errOut = tf(t, "credential", "issue", env.Image, "--policy", withWitnesses(ws[0].VKey, stranger), "--offline",
		"--key", issuerKey, "--holder-key", holderKey, "--out", refused)
	if code != exitInvalid || !strings.Contains(errOut, ": witnesses: ") {
		t.Errorf("credential issue, threshold not met: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(refused); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a credential was written although the gate denied: %v", err)
	}
	// The library: the decision names the check, credential.Issue refuses it.
	p, err := policy.Load(withWitnesses(ws[0].VKey, stranger))
	if err != nil {
		t.Fatal(err)
	}
	v, err := policy.NewVerifier(ctx, p, policy.WithOffline())
	if err != nil {
		t.Fatal(err)
	}
	d, err := v.Verify(ctx, env.Image)
	if err != nil {
		t.Fatal(err)
	}
	if ch, ok := d.Candidates[0].Failed(); !ok || ch.Name != policy.CheckWitnesses || !errors.Is(ch.Err(), policy.ErrWitnesses) {
		t.Fatalf("decision failed at %+v, want %s", ch, policy.CheckWitnesses)
	}
	ik, err := keys.LoadPrivate(issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := keys.LoadPublic(holderKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := credential.Issue(d, ik, hk[0]); !errors.Is(err, credential.ErrDenied) {
		t.Errorf("credential.Issue on a decision denied at witnesses: %v, want ErrDenied", err)
	}
}

// TestGateLitewitnessEndToEnd is the same through the CLI with two
// independent witnesses (two litewitness processes, filippo.io/torchwood,
// from the Go module proxy; .ci/witness.sh): `attest` gets a receipt whose
// checkpoint both cosigned and `verify --offline` with threshold 2 allows.
// With one litewitness stopped the service fails closed, as servertest
// configures it: `attest` gets no receipt (it gives up at its deadline and
// attaches nothing, so the gate denies the image), and once the witness is
// back the held checkpoint is cosigned and a new `attest` is allowed.
func TestGateLitewitnessEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var lws []*witnesstest.Litewitness
	env, err := servertest.Start(ctx, servertest.Config{Dir: filepath.Join(dir, "env"),
		Witnesses: func(vkey string) ([]transparency.WitnessEndpoint, error) {
			var out []transparency.WitnessEndpoint
			for _, name := range []string{"lw1.test/witness", "lw2.test/witness"} {
				lw := witnesstest.StartLitewitness(t, name, vkey)
				lws = append(lws, lw)
				out = append(out, transparency.WitnessEndpoint{URL: lw.URL, Key: lw.VKey})
			}
			return out, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	for k, v := range env.Vars {
		t.Setenv(k, v)
	}
	policyFile, err := quickstart.WritePolicy(dir, env)
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	witnessed := writeWitnessPolicy(t, base, filepath.Join(dir, "witnessed.yaml"), lws[0].VKey, lws[1].VKey)

	mustRun(t, "attest", env.ImageTag, "--ts", env.TSURL, "--identity-server", env.IdentityURL)
	out := mustRun(t, "verify", env.Image, "--policy", witnessed, "--offline")
	if !strings.HasPrefix(out, "ALLOW ") || !strings.Contains(out, "ok   witnesses: ") {
		t.Errorf("verify --offline with threshold 2:\n%s", out)
	}

	// One witness stopped: publication held.
	lws[1].Stop()
	held, err := servertest.PushRandomImage(ctx, env.RegistryHost+"/"+servertest.DefaultRepository+":held")
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	var stdout, stderr bytes.Buffer
	code := run(actx, []string{"attest", held, "--ts", env.TSURL, "--identity-server", env.IdentityURL}, &stdout, &stderr)
	cancel()
	if code != exitUsage { // the receipt never came: "fetch receipt: context deadline exceeded"
		t.Fatalf("attest with a required witness stopped (fail closed): exit %d, want %d", code, exitUsage)
	}
	if code, out, _ := tf(t, "verify", held, "--policy", witnessed, "--offline"); code != exitInvalid || !strings.HasPrefix(out, "DENY ") {
		t.Errorf("verify an image whose attestation was held: exit %d\n%s", code, out)
	}
	// Back: the held checkpoint is cosigned and published.
	lws[1].Start(t)
	mustRun(t, "attest", held, "--ts", env.TSURL, "--identity-server", env.IdentityURL)
	if out := mustRun(t, "verify", held, "--policy", witnessed, "--offline"); !strings.Contains(out, "ok   witnesses: ") {
		t.Errorf("after the witness restarted:\n%s", out)
	}
}
