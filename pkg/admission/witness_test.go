package admission

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/quickstart"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/witnesstest"
)

// witnessConfigYAML gates namespace "witnessed" with a policy requiring
// both witnesses that cosign the service's checkpoints, and namespace
// "stranger" with one requiring a witness that and one that does not.
const witnessConfigYAML = `apiVersion: trustfabric.dev/v1alpha1
kind: AdmissionConfig
policies:
  witnessed: witnessed.yaml
  stranger: stranger.yaml
namespaces:
  - names: [witnessed]
    policy: witnessed
  - names: [stranger]
    policy: stranger
timeout: 8s
`

// TestWitnessThreshold: an image attested with a Transparency Service whose
// checkpoints two witnesses cosign is admitted under a policy with
// `witnesses: {threshold: 2}` of those two, and refused (403, naming the
// witnesses check) when one of the two keys the policy trusts is another
// witness's, so the threshold is not met.
func TestWitnessThreshold(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var ws []*witnesstest.Witness
	for _, name := range []string{"w1.test", "w2.test", "stranger.test"} {
		w, err := witnesstest.New(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
		ws = append(ws, w)
	}
	env, err := servertest.Start(ctx, servertest.Config{Dir: filepath.Join(dir, "env"),
		Witnesses: func(vkey string) ([]transparency.WitnessEndpoint, error) {
			var out []transparency.WitnessEndpoint
			for _, w := range ws[:2] {
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
	if _, err := attest.Run(ctx, attest.Options{Image: env.ImageTag, TS: env.TSURL, IdentityServer: env.IdentityURL,
		Getenv: env.Getenv, Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	p, err := quickstart.WritePolicy(dir, env)
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for file, keys := range map[string][]string{"witnessed.yaml": {ws[0].VKey, ws[1].VKey}, "stranger.yaml": {ws[0].VKey, ws[2].VKey}} {
		section := "    leaf: ietf\n    witnesses:\n      threshold: 2\n      keys:\n        - " + keys[0] + "\n        - " + keys[1] + "\n"
		doc := strings.Replace(string(base), "    leaf: ietf\n", section, 1)
		if doc == string(base) {
			t.Fatal("the quickstart policy changed shape")
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := ParseConfig([]byte(witnessConfigYAML), dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(ctx, cfg, WithPolicyOptions(policy.WithOffline()))
	if err != nil {
		t.Fatal(err)
	}

	// Through the validating webhook.
	if r := post(t, w.Handler(), PathValidate, review(t, deploymentKind, "witnessed", deployment("a", env.Image))).Response; !r.Allowed {
		t.Fatalf("threshold met: denied %+v", r.Result)
	}
	r := post(t, w.Handler(), PathValidate, review(t, deploymentKind, "stranger", deployment("a", env.Image))).Response
	if r.Allowed || r.Result == nil || r.Result.Code != 403 || !strings.Contains(r.Result.Message, ": witnesses: ") {
		t.Fatalf("threshold not met: allowed %v, status %+v", r.Allowed, r.Result)
	}
	// The decision behind it names the check.
	o := w.Decide(ctx, &Request{UID: "u", Kind: deploymentKind, Namespace: "stranger", Operation: "CREATE",
		Object: mustJSON(t, deployment("a", env.Image))})
	if o.Allowed || len(o.Images) != 1 || o.Images[0].Decision == nil || len(o.Images[0].Decision.Candidates) != 1 {
		t.Fatalf("outcome %+v", o)
	}
	ch, ok := o.Images[0].Decision.Candidates[0].Failed()
	if !ok || ch.Name != policy.CheckWitnesses || !errors.Is(ch.Err(), policy.ErrWitnesses) || !errors.Is(ch.Err(), scitt.ErrWitness) {
		t.Fatalf("failed at %+v (%v), want %s", ch, ch.Err(), policy.CheckWitnesses)
	}
}
