package policy

import (
	"context"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// BenchmarkVerify50 verifies an image with 50 SCITT referrers on an
// in-process olareg registry (referrers API): cold (a new verifier, nothing
// cached), cached (the same verifier), and, as the baseline measured in the
// same run, the bare discovery of the 50 referrers with their content (the
// registry round trips the gate cannot avoid). One image has 50 valid
// referrers (the gate stops at the first); the other 50 with a tampered
// proof, so the deny evaluates every candidate.
func BenchmarkVerify50(b *testing.B) {
	t := &testing.T{}
	w := newWorld(t)
	w.t = t
	image, digest := w.pushImage("acme/bench")
	bad, badDigest := w.pushImage("acme/bench-bad")
	for i := 0; i < 50; i++ {
		w.attest(evidence{image: image, digest: digest})
		w.attest(evidence{image: bad, digest: badDigest, tamperPath: true})
	}
	if t.Failed() {
		b.Fatal("fixture failed")
	}
	path := w.write("policy.yaml", []byte(basePolicy))
	p, err := Load(path)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("discover-baseline", func(b *testing.B) {
		for b.Loop() {
			c, _ := oci.New()
			d, err := c.Discover(ctx, image, oci.WithArtifactType(scitt.MediaTypeStatement), oci.WithContent())
			if err != nil || len(d.Entries) != 50 {
				b.Fatalf("%v", err)
			}
		}
	})
	for _, c := range []struct {
		name, image string
		allow       bool
	}{{"cold-allow", image, true}, {"cold-deny-all-50", bad, false}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				client, _ := oci.New()
				v, err := NewVerifier(ctx, p, WithOCIClient(client), WithOffline())
				if err != nil {
					b.Fatal(err)
				}
				d, err := v.Verify(ctx, c.image)
				if err != nil || d.Allowed != c.allow || (!c.allow && len(d.Candidates) != 50) {
					b.Fatalf("%v allowed=%v candidates=%d", err, d.Allowed, len(d.Candidates))
				}
			}
		})
	}
	b.Run("cached", func(b *testing.B) {
		c, _ := oci.New()
		v, err := NewVerifier(ctx, p, WithOCIClient(c), WithOffline())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(ctx, image); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			d, err := v.Verify(ctx, image)
			if err != nil || !d.Cached {
				b.Fatalf("%v", err)
			}
		}
	})
}

// BenchmarkVerifySharedBlob is issue 11's attack: 40 referrers whose
// statements all carry one 15 MiB preimage, by a workload the policy does
// not allow, so that the deny evaluates every one. The verification fetches
// the blob once (it used to fetch it once per group of four).
func BenchmarkVerifySharedBlob(b *testing.B) {
	t := &testing.T{}
	w := newWorld(t)
	w.t = t
	image, digest := w.pushImage("acme/shared-bench")
	shared := make([]byte, 15<<20)
	for range 40 {
		w.attest(evidence{image: image, digest: digest, payload: shared, contentType: "text/plain",
			id: "spiffe://ci.example.org/github/acme/tools/.github/workflows/x.yml/refs/heads/main"})
	}
	if t.Failed() {
		b.Fatal("fixture failed")
	}
	p, err := Load(w.write("policy.yaml", []byte(basePolicy+"payloads:\n  require:\n    - contentTypes: [text/plain]\n")))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		client, _ := oci.New()
		v, err := NewVerifier(ctx, p, WithOCIClient(client), WithOffline())
		if err != nil {
			b.Fatal(err)
		}
		d, err := v.Verify(ctx, image)
		if err != nil || d.Allowed || len(d.Candidates) != 40 {
			b.Fatalf("%v allowed=%v candidates=%d", err, d != nil && d.Allowed, len(d.Candidates))
		}
	}
}
