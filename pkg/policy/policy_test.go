package policy

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

func TestGate(t *testing.T) {
	w := newWorld(t)
	v := w.verifier(basePolicy)
	retired, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	retired.KID = retired.Public().COSEThumbprint()
	foreign, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	foreign.KID = foreign.Public().COSEThumbprint()

	cases := []struct {
		name      string
		e         evidence
		none      bool
		wantCheck string
		wantErr   error
	}{
		{name: "allowed"},
		{name: "no referrers", none: true},
		{name: "preimage swapped on the registry", e: evidence{swapPreimage: true}, wantCheck: CheckPreimage, wantErr: scitt.ErrPayloadMismatch},
		{name: "identity not allowed", e: evidence{id: "spiffe://ci.example.org/github/evil/widgets/.github/workflows/release.yml/refs/heads/main"}, wantCheck: CheckIdentity, wantErr: ErrNotAllowed},
		{name: "prefix is matched on segment boundaries", e: evidence{id: "spiffe://ci.example.org/github/acme/widgets-evil/x"}, wantCheck: CheckIdentity, wantErr: ErrNotAllowed},
		{name: "immutable id differs (renamed repository)", e: evidence{repoID: "666"}, wantCheck: CheckIdentity, wantErr: ErrNotAllowed},
		{name: "receipt from an untrusted service", e: evidence{tsKey: foreign}, wantCheck: CheckReceipts, wantErr: ErrNoTrustedReceipt},
		{name: "tampered inclusion proof", e: evidence{tamperPath: true}, wantCheck: CheckReceipts, wantErr: scitt.ErrProofMismatch},
		{name: "subject is another digest", e: evidence{subject: "oci://example.org/acme/widgets@sha256:0000000000000000000000000000000000000000000000000000000000000000"}, wantCheck: CheckSubject, wantErr: ErrWrongSubject},
		{name: "WIT expired before registration", e: evidence{witExpiry: time.Now().Add(-time.Hour)}, wantCheck: CheckSignature},
		{name: "ref not allowed by provenance rules", e: evidence{ref: "refs/heads/dev"}, wantCheck: CheckProvenance, wantErr: ErrProvenance},
		{name: "provenance claims main, the identity was issued for another branch", e: evidence{witRef: "refs/heads/dev"}, wantCheck: CheckProvenance, wantErr: ErrProvenance},
		{name: "receipt without a registration time", e: evidence{noReceiptIat: true}, wantCheck: CheckReceipts, wantErr: ErrNoTrustedReceipt},
		{name: "receipt for another subject (a grafted consistency receipt)", e: evidence{receiptSubject: "consistency 1 2"}, wantCheck: CheckReceipts, wantErr: ErrNoTrustedReceipt},
		{name: "consistency receipt with a grafted inclusion proof, sub = the entry", e: evidence{graftConsistency: true}, wantCheck: CheckReceipts, wantErr: scitt.ErrWrongReceiptKind},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := w.with(t)
			image, digest := w.pushImage("acme/case" + string(rune('a'+i)))
			if !c.none {
				c.e.image, c.e.digest = image, digest
				w.attest(c.e)
			}
			d, err := v.Verify(w.ctx, image)
			if err != nil {
				t.Fatal(err)
			}
			if c.wantCheck == "" && !c.none {
				if !d.Allowed || d.SatisfiedBy == nil {
					t.Fatalf("denied: %v", d.Reasons)
				}
				if d.SatisfiedBy.Issuer != goodID || d.SatisfiedBy.RegisteredAt.IsZero() {
					t.Errorf("satisfied by %+v", d.SatisfiedBy)
				}
				return
			}
			if d.Allowed {
				t.Fatalf("allowed, want deny")
			}
			if len(d.Reasons) == 0 {
				t.Fatal("a deny must give reasons")
			}
			if c.none {
				if !strings.Contains(d.Reasons[0], ErrNoEvidence.Error()) {
					t.Errorf("reasons %v", d.Reasons)
				}
				return
			}
			ch, ok := d.Candidates[0].Failed()
			if !ok || ch.Name != c.wantCheck {
				t.Fatalf("failed at %+v, want %s; reasons %v", ch, c.wantCheck, d.Reasons)
			}
			if c.wantErr != nil && !errors.Is(ch.Err(), c.wantErr) {
				t.Errorf("error %v, want %v", ch.Err(), c.wantErr)
			}
		})
	}

	t.Run("only referrers of other types", func(t *testing.T) {
		w := w.with(t)
		image, digest := w.pushImage("acme/sbom-only")
		w.attachOther(image, digest)
		all, err := w.oci.Discover(w.ctx, image, oci.WithArtifactType(""))
		if err != nil || len(all.Entries) != 1 || all.Entries[0].Descriptor.ArtifactType != "application/spdx+json" {
			t.Fatalf("the SBOM referrer is not listed: %v %+v", err, all)
		}
		d, err := v.Verify(w.ctx, image)
		if err != nil || d.Allowed || len(d.Candidates) != 0 || !strings.Contains(strings.Join(d.Reasons, ""), ErrNoEvidence.Error()) {
			t.Fatalf("%v allowed=%v candidates=%d reasons=%v", err, d.Allowed, len(d.Candidates), d.Reasons)
		}
	})

	t.Run("retired but still published service key", func(t *testing.T) {
		w := w.with(t)
		ks, _ := keys.MarshalCOSEKeySet(keys.Set{w.tsKey.Public(), retired.Public()})
		w.write("ts-keys-rotated.cbor", ks)
		v2 := w.verifier(strings.Replace(basePolicy, "ts-keys.cbor", "ts-keys-rotated.cbor", 1))
		image, digest := w.pushImage("acme/rotated")
		w.attest(evidence{image: image, digest: digest, tsKey: retired})
		d, err := v2.Verify(w.ctx, image)
		if err != nil || !d.Allowed {
			t.Fatalf("%v %v", err, d.Reasons)
		}
	})

	t.Run("one good candidate among bad ones and other artifact types", func(t *testing.T) {
		w := w.with(t)
		image, digest := w.pushImage("acme/mixed")
		w.attachOther(image, digest)
		w.attest(evidence{image: image, digest: digest, tamperPath: true})
		w.attest(evidence{image: image, digest: digest})
		w.attachOther(image, digest)
		d, err := v.Verify(w.ctx, image)
		if err != nil || !d.Allowed {
			t.Fatalf("%v allowed=%v candidates=%d", err, d.Allowed, len(d.Candidates))
		}
		// The gate stops at the satisfying candidate; when the tampered one
		// was listed first it was evaluated and refused at receipts.
		if n := len(d.Candidates); n == 2 {
			if ch, _ := d.Candidates[0].Failed(); ch.Name != CheckReceipts {
				t.Errorf("first candidate failed at %q, want receipts", ch.Name)
			}
		} else if n != 1 {
			t.Errorf("%d candidates: referrers of other types must not be candidates", n)
		}
	})
}

func TestDecisionCacheAndCoalescing(t *testing.T) {
	w := newWorld(t)
	v := w.verifier(basePolicy)
	image, digest := w.pushImage("acme/cache")
	w.attest(evidence{image: image, digest: digest})
	w.counter.Reset()
	var wg sync.WaitGroup
	results := make([]bool, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := v.Verify(w.ctx, image)
			results[i] = err == nil && d.Allowed
		}()
	}
	wg.Wait()
	for i, ok := range results {
		if !ok {
			t.Fatalf("verification %d did not allow", i)
		}
	}
	referrers := 0
	for path, n := range w.counter.Hits() {
		if strings.Contains(path, "/referrers/") {
			referrers += n
		}
	}
	if referrers != 1 {
		t.Errorf("8 concurrent verifications listed referrers %d times, want 1: %v", referrers, w.counter.Hits())
	}
	d, err := v.Verify(w.ctx, image)
	if err != nil || !d.Cached || !d.Allowed {
		t.Fatalf("second verify: cached=%v err=%v", d.Cached, err)
	}
}

func TestPolicyRejects(t *testing.T) {
	base := basePolicy
	for name, doc := range map[string]string{
		"unknown field":        base + "allowEverything: true\n",
		"empty workloads":      strings.Replace(base, "workloads:\n  - prefix: spiffe://ci.example.org/github/acme/widgets\n    require: {repository_id: \"42\"}\n", "workloads: []\n", 1),
		"no services":          strings.Replace(base, "transparencyServices:\n  - issuer: https://ts.example.org\n    keys: [ts-keys.cbor]\n", "transparencyServices: []\n", 1),
		"no identities":        strings.Replace(base, "identities:\n  - trustDomain: ci.example.org\n    bundle: bundle.json\n", "", 1),
		"wrong apiVersion":     strings.Replace(base, "v1alpha1", "v9", 1),
		"two rule kinds":       strings.Replace(base, "  - prefix: spiffe", "  - exact: x\n    prefix: spiffe", 1),
		"bad duration":         base + "maxReceiptAge: forever\n",
		"too many receipts":    base + "requiredReceipts: 2\n",
		"empty":                "",
		"service without keys": strings.Replace(base, "    keys: [ts-keys.cbor]\n", "", 1),
	} {
		if _, err := Parse([]byte(doc), t.TempDir()); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("%s: %v, want ErrInvalidPolicy", name, err)
		}
	}
	if _, err := Parse([]byte(base), t.TempDir()); err != nil {
		t.Fatalf("base policy: %v", err)
	}
}

func TestPrefixMatch(t *testing.T) {
	for _, c := range []struct {
		prefix, id string
		want       bool
	}{
		{"spiffe://td/github/acme", "spiffe://td/github/acme", true},
		{"spiffe://td/github/acme", "spiffe://td/github/acme/x", true},
		{"spiffe://td/github/acme", "spiffe://td/github/acme-evil", false},
		{"spiffe://td/github/acme/", "spiffe://td/github/acme/x", true},
		{"spiffe://td/github/acme/", "spiffe://td/github/acmex", false},
	} {
		if got := prefixMatch(c.prefix, c.id); got != c.want {
			t.Errorf("prefixMatch(%q, %q) = %v", c.prefix, c.id, got)
		}
	}
}
