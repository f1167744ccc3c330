package main

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	f_note "github.com/transparency-dev/formats/note"

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
		section := "    leaf: ietf\n    witnesses:\n      threshold: 2\n      keys:\n"
		for _, k := range keys {
			section += "        - " + k + "\n"
		}
		doc := strings.Replace(string(base), "    leaf: ietf\n", section, 1)
		if doc == string(base) {
			t.Fatal("the quickstart policy changed shape")
		}
		p := filepath.Join(dir, "witnessed.yaml")
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
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
}
