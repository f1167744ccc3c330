package policy

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

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

const (
	trustDomain = "ci.example.org"
	goodID      = "spiffe://ci.example.org/github/acme/widgets/.github/workflows/release.yml/refs/heads/main"
	tsIssuer    = "https://ts.example.org"
)

// world is a registry, an identity server key, a transparency service key
// and a policy directory: everything the gate trusts, built from the real
// libraries.
type world struct {
	t       *testing.T
	ctx     context.Context
	host    string
	counter *ocitest.Counter
	oci     *oci.Client
	idKey   *keys.PrivateKey
	tsKey   *keys.PrivateKey
	dir     string
	now     time.Time
}

func newWorld(t *testing.T) *world {
	t.Helper()
	h, stop := ocitest.NewOlaregHandler(nil)
	counter := &ocitest.Counter{Next: h}
	reg := ocitest.Serve(counter, stop)
	t.Cleanup(reg.Close)
	c, err := oci.New()
	if err != nil {
		t.Fatal(err)
	}
	idKey, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	tsKey, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	tsKey.KID = tsKey.Public().COSEThumbprint()
	w := &world{t: t, ctx: context.Background(), host: reg.Host, counter: counter, oci: c, idKey: idKey, tsKey: tsKey, dir: t.TempDir(), now: time.Now()}
	bundle := &wimse.Bundle{TrustDomain: trustDomain, Keys: []jose.JSONWebKey{idKey.PublicJWK()}}
	bb, err := bundle.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	w.write("bundle.json", bb)
	ks, err := keys.MarshalCOSEKeySet(keys.Set{tsKey.Public()})
	if err != nil {
		t.Fatal(err)
	}
	w.write("ts-keys.cbor", ks)
	return w
}

// with returns the world reporting to t (a subtest).
func (w *world) with(t *testing.T) *world {
	c := *w
	c.t = t
	return &c
}

func (w *world) write(name string, b []byte) string {
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// pushImage pushes a random image and returns repo@digest and the digest.
func (w *world) pushImage(repo string) (string, string) {
	img, err := random.Image(128, 1)
	if err != nil {
		w.t.Fatal(err)
	}
	ref, _ := name.ParseReference(w.host + "/" + repo + ":v1")
	if err := remote.Write(ref, img); err != nil {
		w.t.Fatal(err)
	}
	d, _ := img.Digest()
	return w.host + "/" + repo + "@" + d.String(), d.String()
}

const basePolicy = `apiVersion: trustfabric.dev/v1alpha1
kind: VerificationPolicy
transparencyServices:
  - issuer: https://ts.example.org
    keys: [ts-keys.cbor]
identities:
  - trustDomain: ci.example.org
    bundle: bundle.json
workloads:
  - prefix: spiffe://ci.example.org/github/acme/widgets
    require: {repository_id: "42"}
provenance:
  sourceRepositories: ["https://github.com/acme/*"]
  refs: [refs/heads/main]
  triggers: [push]
  builderIDs: ["https://github.com/acme/widgets/.github/workflows/*@refs/heads/main"]
`

func (w *world) verifier(policyYAML string, opts ...Option) *Verifier {
	w.t.Helper()
	path := w.write("policy.yaml", []byte(policyYAML))
	p, err := Load(path)
	if err != nil {
		w.t.Fatal(err)
	}
	v, err := NewVerifier(w.ctx, p, append([]Option{WithOCIClient(w.oci), WithOffline()}, opts...)...)
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

// evidence describes one attestation to build; the zero value (with the
// image filled in) is a good one.
type evidence struct {
	image, digest string
	id            string
	repoID        string
	witExpiry     time.Time
	subject       string
	tsKey         *keys.PrivateKey
	tamperPath    bool
	swapPreimage  bool
	ref           string
	// witRef is the ref the Identity Server signed into the WIT (default
	// ref): a job on another branch writing main into its provenance.
	witRef string
	// noReceiptIat and receiptSubject shape the receipt's CWT claims.
	noReceiptIat   bool
	receiptSubject string
	// graftConsistency replaces the receipt by a consistency receipt of the
	// same service (same claims, signed over the same root) carrying the
	// statement's inclusion proof in its unprotected header.
	graftConsistency bool
	// ci replaces the WIT's CI claims (a GitLab or Kubernetes workload);
	// prov, given the digest, replaces the provenance.
	ci   map[string]any
	prov func(digest string) []byte
	// payload and contentType replace the provenance with another payload
	// (an SBOM, text) declared with that content type.
	payload     []byte
	contentType string
	// badReceipt adds a second receipt of the trusted service whose audit
	// path is tampered, "first" or "last".
	badReceipt string
	// checkpoint, when set, gives the checkpoint the receipt carries, from
	// the receipt's tree size and root.
	checkpoint func(size uint64, root []byte) []byte
}

func (w *world) provenance(digest string, ref string) []byte {
	st := map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "widgets", "digest": map[string]string{"sha256": digest[len("sha256:"):]}}},
		"predicateType": "https://slsa.dev/provenance/v1",
		"predicate": map[string]any{
			"buildDefinition": map[string]any{
				"buildType":            "https://actions.github.io/buildtypes/workflow/v1",
				"externalParameters":   map[string]any{"workflow": map[string]any{"ref": ref, "path": ".github/workflows/release.yml"}},
				"internalParameters":   map[string]any{"github": map[string]any{"event_name": "push", "repository_id": "42"}},
				"resolvedDependencies": []any{map[string]any{"uri": "git+https://github.com/acme/widgets@" + ref, "digest": map[string]string{"gitCommit": "0123456789abcdef0123456789abcdef01234567"}}},
			},
			"runDetails": map[string]any{"builder": map[string]any{"id": "https://github.com/acme/widgets/.github/workflows/release.yml@" + ref}},
		},
	}
	b, err := json.Marshal(st)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

// attest builds the evidence and attaches it to the image.
func (w *world) attest(e evidence) {
	w.t.Helper()
	if e.id == "" {
		e.id = goodID
	}
	if e.repoID == "" {
		e.repoID = "42"
	}
	if e.witExpiry.IsZero() {
		e.witExpiry = w.now.Add(10 * time.Minute)
	}
	if e.subject == "" {
		e.subject = "oci://" + e.image
	}
	if e.tsKey == nil {
		e.tsKey = w.tsKey
	}
	if e.ref == "" {
		e.ref = "refs/heads/main"
	}
	if e.witRef == "" {
		e.witRef = e.ref
	}
	wk, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		w.t.Fatal(err)
	}
	id, err := wimse.ParseIdentifier(e.id)
	if err != nil {
		w.t.Fatal(err)
	}
	wit, err := wimse.MintWIT(w.idKey, wimse.WITClaims{
		Subject: id, Issuer: "https://id.example.org", IssuedAt: e.witExpiry.Add(-10 * time.Minute), Expiry: e.witExpiry,
		Key: wk.PublicJWK(), Extra: map[string]any{ciClaim: ciClaims(e)},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	key, err := keys.NewPrivateKey(wk.Signer)
	if err != nil {
		w.t.Fatal(err)
	}
	preimage := w.provenance(e.digest, e.ref)
	if e.prov != nil {
		preimage = e.prov(e.digest)
	}
	signOpts := []scitt.SignOption{scitt.WithWIT(wit)}
	if e.payload != nil {
		preimage = e.payload
	}
	if e.contentType != "" {
		signOpts = append(signOpts, scitt.WithContentType(e.contentType))
	}
	stmt, err := scitt.SignStatement(w.ctx, key, scitt.Claims{Issuer: e.id, Subject: e.subject, IssuedAt: w.now}, preimage, signOpts...)
	if err != nil {
		w.t.Fatal(err)
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	tree.AppendData([]byte("x"), []byte("y"), []byte("z"))
	tree.Append(scitt.LeafHash(stmt, scitt.LeafIETF))
	path, err := tree.InclusionProof(3, 4)
	if err != nil {
		w.t.Fatal(err)
	}
	if e.tamperPath {
		path[0] = append([]byte{}, path[0]...)
		path[0][0] ^= 1
	}
	entry := sha256.Sum256(stmt)
	rc := scitt.ReceiptClaims{Issuer: tsIssuer, Subject: hex.EncodeToString(entry[:]), IssuedAt: w.now}
	if e.noReceiptIat {
		rc.IssuedAt = time.Time{}
	}
	if e.receiptSubject != "" {
		rc.Subject = e.receiptSubject
	}
	if e.checkpoint != nil {
		rc.Checkpoint = e.checkpoint(4, tree.Hash())
	}
	receipt, err := scitt.IssueReceipt(w.ctx, e.tsKey, rc, scitt.InclusionProof{TreeSize: 4, LeafIndex: 3, Path: path}, tree.Hash())
	if err != nil {
		w.t.Fatal(err)
	}
	if e.graftConsistency {
		cpath, err := tree.ConsistencyProof(2, 4)
		if err != nil {
			w.t.Fatal(err)
		}
		cons, err := scitt.IssueConsistencyReceipt(w.ctx, e.tsKey, rc, scitt.ConsistencyProof{TreeSize1: 2, TreeSize2: 4, Path: cpath}, tree.Hash())
		if err != nil {
			w.t.Fatal(err)
		}
		cm, err := cosewire.Parse(cons, scitt.MaxReceiptSize)
		if err != nil {
			w.t.Fatal(err)
		}
		im, err := cosewire.Parse(receipt, scitt.MaxReceiptSize)
		if err != nil {
			w.t.Fatal(err)
		}
		receipt = cm.WithUnprotected(im.Unprotected)
	}
	receipts := [][]byte{receipt}
	if e.badReceipt != "" {
		bad := append([][]byte{}, path...)
		bad[1] = append([]byte{}, bad[1]...)
		bad[1][0] ^= 1
		r, err := scitt.IssueReceipt(w.ctx, e.tsKey, rc, scitt.InclusionProof{TreeSize: 4, LeafIndex: 3, Path: bad}, tree.Hash())
		if err != nil {
			w.t.Fatal(err)
		}
		if e.badReceipt == "first" {
			receipts = [][]byte{r, receipt}
		} else {
			receipts = append(receipts, r)
		}
	}
	transparent := stmt
	for _, r := range receipts {
		if transparent, err = scitt.AddReceipt(transparent, r); err != nil {
			w.t.Fatal(err)
		}
	}
	if e.swapPreimage {
		preimage = w.provenance(e.digest, "refs/heads/evil")
	}
	a := oci.Attachment{Statement: transparent, Preimage: preimage,
		Annotations: oci.Annotations{Issuer: e.id, Subject: e.subject, TS: []string{tsIssuer}, PredicateType: "https://slsa.dev/provenance/v1"}}
	if e.payload != nil {
		a.PreimageMediaType, a.Annotations.PredicateType, a.Annotations.ContentType = e.contentType, "", e.contentType
	}
	_, err = w.oci.Attach(w.ctx, e.image, a)
	if err != nil {
		w.t.Fatal(err)
	}
}

// rawManifest is a manifest pushed as given.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error) { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) {
	return types.OCIManifestSchema1, nil
}

// attachOther attaches a referrer of another artifact type (an SBOM) to the
// image, as other tools do.
func (w *world) attachOther(image, digest string) {
	w.t.Helper()
	repo, _, _ := strings.Cut(image, "@")
	blob := static.NewLayer([]byte(`{"spdxVersion":"SPDX-2.3"}`), "application/spdx+json")
	empty := static.NewLayer([]byte(`{}`), "application/vnd.oci.empty.v1+json")
	r, _ := name.NewRepository(repo)
	for _, l := range []v1.Layer{blob, empty} {
		if err := remote.WriteLayer(r, l); err != nil {
			w.t.Fatal(err)
		}
	}
	desc := func(l v1.Layer, mt string) map[string]any {
		d, _ := l.Digest()
		s, _ := l.Size()
		return map[string]any{"mediaType": mt, "digest": d.String(), "size": s}
	}
	img, err := remote.Get(must(name.ParseReference(image)))
	if err != nil {
		w.t.Fatal(err)
	}
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"artifactType": "application/spdx+json",
		"config":       desc(empty, "application/vnd.oci.empty.v1+json"),
		"layers":       []any{desc(blob, "application/spdx+json")},
		"subject":      map[string]any{"mediaType": string(img.MediaType), "digest": digest, "size": img.Size},
	})
	sum := sha256.Sum256(m)
	ref := must(name.ParseReference(repo + "@sha256:" + hex.EncodeToString(sum[:])))
	if err := remote.Put(ref, rawManifest(m)); err != nil {
		w.t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func ciClaims(e evidence) map[string]any {
	if e.ci != nil {
		return e.ci
	}
	return map[string]any{"repository": "acme/widgets", "repository_id": e.repoID,
		"ref": e.witRef, "event_name": "push", "workflow_ref": "acme/widgets/.github/workflows/release.yml@" + e.witRef}
}
