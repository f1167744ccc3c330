package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

// benchImages pushes n images to the fixture's registry, each with
// referrers statements: referrers-1 by a workload the policy does not allow
// (attested first, so listed first) and one allowed, so that a cold
// decision evaluates every referrer before the one that allows it.
func benchImages(tb testing.TB, f *fixture, n, referrers int) []string {
	tb.Helper()
	ctx := context.Background()
	env := f.env
	orig := env.GitHub.Run()
	other := orig
	other.Repo, other.RepoID = "tools", "700700700"
	var out []string
	for i := range n {
		img, err := servertest.PushRandomImage(ctx, fmt.Sprintf("%s/acme/bench%d-%d:v1", env.RegistryHost, referrers, i))
		if err != nil {
			tb.Fatal(err)
		}
		for j := range referrers {
			getenv := env.Getenv
			if j < referrers-1 {
				env.GitHub.SetRun(other)
				vars := env.GitHub.Env()
				getenv = func(k string) string {
					if v, ok := vars[k]; ok {
						return v
					}
					return env.Getenv(k)
				}
			}
			_, err := attest.Run(ctx, attest.Options{Image: img, TS: env.TSURL, IdentityServer: env.IdentityURL, Getenv: getenv, Out: io.Discard})
			env.GitHub.SetRun(orig)
			if err != nil {
				tb.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond) // distinct creation times: the listing order is the attestation order
		}
		out = append(out, img)
	}
	return out
}

// latencies records one duration per operation and reports p50 and p99.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	pct := func(p float64) float64 {
		return float64(l[min(len(l)-1, int(p*float64(len(l))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkAdmission: the whole /validate request (decode, namespace
// policy, verify, encode) for a Deployment with 3 images.
//   - cached: the decisions for the 3 digests are cached (the steady state:
//     every replica, rollout and controller-created pod of a workload).
//   - cold-20-referrers: no decision cache; each image has 20 SCITT
//     referrers on the in-process olareg registry, 19 by a workload the
//     policy does not allow, so all 20 are fetched and checked.
//
// The Gatekeeper endpoint is measured the same way (gatekeeper-*). The
// baselines (verify-*) are the same three decisions made by calling
// policy.Verifier.Verify directly, in sequence, in the same run: the
// ratio is what the webhook adds (HTTP handling, JSON, the namespace
// policy, concurrency).
func BenchmarkAdmission(b *testing.B) {
	f := getFixture(b)
	cachedImgs := benchImages(b, f, 3, 1)
	var coldImgs []string
	cold := func(b *testing.B) []string {
		if coldImgs == nil {
			coldImgs = benchImages(b, f, 3, 20)
		}
		return coldImgs
	}
	once := func(w *Webhook, path string, body []byte) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		w.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
		return rec
	}
	run := func(b *testing.B, w *Webhook, path string, body []byte, check func(*httptest.ResponseRecorder)) {
		h := w.Handler()
		var lat latencies
		for b.Loop() {
			rec := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
			lat = append(lat, time.Since(start))
			check(rec)
		}
		lat.report(b)
	}
	allowed := func(b *testing.B) func(*httptest.ResponseRecorder) {
		return func(rec *httptest.ResponseRecorder) {
			var rv Review
			if err := json.Unmarshal(rec.Body.Bytes(), &rv); err != nil || !rv.Response.Allowed {
				b.Fatalf("not allowed: %s", rec.Body)
			}
		}
	}
	provided := func(b *testing.B) func(*httptest.ResponseRecorder) {
		return func(rec *httptest.ResponseRecorder) {
			var pr ProviderResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &pr); err != nil || len(pr.Response.Items) != 3 || pr.Response.Items[2].Error != "" {
				b.Fatalf("provider: %s", rec.Body)
			}
		}
	}
	gkBody := func(imgs []string) []byte {
		body, _ := json.Marshal(map[string]any{"apiVersion": ProviderAPIVersion, "kind": "ProviderRequest",
			"request": map[string]any{"keys": imgs}})
		return body
	}
	newWebhook := func(b *testing.B, opts ...policy.Option) *Webhook {
		client, err := oci.New()
		if err != nil {
			b.Fatal(err)
		}
		w := f.webhook(b, nil, WithOCIClient(client), WithPolicyOptions(opts...))
		w.cfg.Default = "prod"
		return w
	}
	verify := func(b *testing.B, imgs []string, opts ...policy.Option) {
		pol, err := policy.Load(f.policyFile)
		if err != nil {
			b.Fatal(err)
		}
		client, err := oci.New()
		if err != nil {
			b.Fatal(err)
		}
		v, err := policy.NewVerifier(context.Background(), pol, append([]policy.Option{policy.WithOCIClient(client)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		for _, img := range imgs { // fills the cache when there is one
			if _, err := v.Verify(ctx, img); err != nil {
				b.Fatal(err)
			}
		}
		var lat latencies
		for b.Loop() {
			start := time.Now()
			for _, img := range imgs {
				d, err := v.Verify(ctx, img)
				if err != nil || !d.Allowed {
					b.Fatalf("verify %s: %v %v", img, err, d)
				}
			}
			lat = append(lat, time.Since(start))
		}
		lat.report(b)
	}
	b.Run("verify-cached", func(b *testing.B) { verify(b, cachedImgs) })
	b.Run("verify-cold-20-referrers", func(b *testing.B) { verify(b, cold(b), policy.WithCacheTTL(0, 0)) })
	b.Run("cached", func(b *testing.B) {
		w := newWebhook(b)
		body := review(b, deploymentKind, nsGated, deployment("bench", cachedImgs...))
		allowed(b)(once(w, PathValidate, body)) // fills the decision cache
		run(b, w, PathValidate, body, allowed(b))
	})
	b.Run("cold-20-referrers", func(b *testing.B) {
		w := newWebhook(b, policy.WithCacheTTL(0, 0))
		run(b, w, PathValidate, review(b, deploymentKind, nsGated, deployment("bench", cold(b)...)), allowed(b))
	})
	b.Run("gatekeeper-cached", func(b *testing.B) {
		w := newWebhook(b)
		body := gkBody(cachedImgs)
		provided(b)(once(w, PathGatekeeper, body)) // fills the decision cache
		run(b, w, PathGatekeeper, body, provided(b))
	})
	b.Run("gatekeeper-cold-20-referrers", func(b *testing.B) {
		w := newWebhook(b, policy.WithCacheTTL(0, 0))
		run(b, w, PathGatekeeper, gkBody(cold(b)), provided(b))
	})
}
