package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
)

func TestAttachDiscoverRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h, stop := b.new()
			host := serve(t, h, stop)
			img := pushImage(t, host, "acme/widgets")
			c := newClient(t)
			for i := range 2 {
				got, err := c.Attach(ctx, img, attachment(i))
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 || got[0].Mode != b.mode || got[0].Subject != img {
					t.Fatalf("Attach = %+v, want one %s attachment to %s", got, b.mode, img)
				}
			}
			// Attaching the same statement again is idempotent.
			if _, err := c.Attach(ctx, img, attachment(1)); err != nil {
				t.Fatal(err)
			}
			// A fresh client (no cached capability) lists through the tag, resolved once.
			d, err := newClient(t).Discover(ctx, strings.Replace(img, "@", ":v1@", 1)[:0]+host+"/acme/widgets:v1", WithContent())
			if err != nil {
				t.Fatal(err)
			}
			if d.Mode != b.mode || len(d.Entries) != 2 || d.Repository+"@"+d.Digest != img {
				t.Fatalf("Discover = mode %s, %d entries, %s@%s", d.Mode, len(d.Entries), d.Repository, d.Digest)
			}
			for i, e := range d.Entries {
				want := attachment(i)
				if e.Err != nil {
					t.Fatalf("entry %d: %v", i, e.Err)
				}
				if !bytes.Equal(e.Statement, want.Statement) || !bytes.Equal(e.Preimage, want.Preimage) {
					t.Errorf("entry %d: content differs", i)
				}
				if e.Annotations.EntryID != want.Annotations.EntryID || e.Annotations.Issuer != want.Annotations.Issuer ||
					!e.Annotations.Created.Equal(want.Annotations.Created) || e.Descriptor.ArtifactType != ArtifactType {
					t.Errorf("entry %d: annotations %+v", i, e.Annotations)
				}
			}
		})
	}
}

// TestManifestBytes checks the referrer manifest against design §2.5 byte for byte where
// the spec fixes the bytes (the empty descriptor).
func TestManifestBytes(t *testing.T) {
	if digestOf([]byte("{}")) != EmptyDigest {
		t.Fatal("EmptyDigest is not sha256({})")
	}
	subj := Descriptor{MediaType: ManifestMediaType, Digest: digestOf([]byte("img")), Size: 3}
	a := attachment(7)
	b, err := referrerManifest(subj, ArtifactType, newBlob(StatementMediaType, a.Statement, StatementTitle), newBlob(PreimageMediaType, a.Preimage, "preimage.intoto.json"), a.Annotations.Map())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/scitt-statement+cose",` +
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="},` +
		`"layers":[{"mediaType":"application/scitt-statement+cose",`
	if !bytes.HasPrefix(b, []byte(want)) {
		t.Errorf("manifest starts\n%s\nwant\n%s", b[:len(want)], want)
	}
	m, err := parseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Layers[1].MediaType != PreimageMediaType || m.Subject.Digest != subj.Digest ||
		m.Annotations[AnnotationCreated] != "2026-03-01T12:00:07Z" || m.Annotations[AnnotationPredicate] == "" {
		t.Errorf("manifest %s", b)
	}
}

func TestAttachRecursive(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h, stop := b.new()
			host := serve(t, h, stop)
			idx, kids := pushIndex(t, host, "acme/multi", 2)
			c := newClient(t)
			got, err := c.Attach(ctx, idx, attachment(1), Recursive())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 {
				t.Fatalf("attached %d, want index + 2 platforms", len(got))
			}
			for _, k := range append([]string{strings.SplitN(idx, "@", 2)[1]}, kids[0].String(), kids[1].String()) {
				d, err := c.Discover(ctx, host+"/acme/multi@"+k)
				if err != nil || len(d.Entries) != 1 {
					t.Errorf("discover %s: %v, %+v", k, err, d)
				}
			}
		})
	}
}

// TestConcurrentFallbackAttach: 8 writers, each its own client (as 8 CI jobs would be),
// attach to one image on a registry without the referrers API; none is lost.
func TestConcurrentFallbackAttach(t *testing.T) {
	ctx := context.Background()
	for round := range 3 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			h, stop := backends[1].new()
			host := serve(t, h, stop)
			img := pushImage(t, host, "acme/race")
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = newClient(t).Attach(ctx, img, attachment(i))
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("writer %d: %v", i, err)
				}
			}
			d, err := newClient(t).Discover(ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Entries) != 8 {
				t.Fatalf("found %d referrers after 8 concurrent writers, want 8", len(d.Entries))
			}
		})
	}
}

func TestMissingImage(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h, stop := b.new()
			host := serve(t, h, stop)
			pushImage(t, host, "acme/widgets")
			missing := host + "/acme/widgets@" + digestOf([]byte("nothing"))
			if _, err := newClient(t).Attach(ctx, missing, attachment(0)); !errors.Is(err, ErrImageNotFound) {
				t.Errorf("attach: err = %v, want ErrImageNotFound", err)
			}
			if _, err := newClient(t).Discover(ctx, host+"/acme/widgets:nope"); !errors.Is(err, ErrImageNotFound) {
				t.Errorf("discover: err = %v, want ErrImageNotFound", err)
			}
			if _, err := newClient(t).Attach(ctx, host+"/acme/widgets:v1", attachment(0)); !errors.Is(err, ErrBadReference) {
				t.Errorf("attach to tag: err = %v, want ErrBadReference", err)
			}
		})
	}
}

// TestTagResolvedOnce: a tag costs one manifest GET; everything after uses the digest.
func TestTagResolvedOnce(t *testing.T) {
	h, stop := ocitest.NewOlaregHandler(nil)
	cnt := &ocitest.Counter{Next: h}
	host := serve(t, cnt, stop)
	img := pushImage(t, host, "acme/widgets")
	c := newClient(t)
	if _, err := c.Attach(context.Background(), img, attachment(0)); err != nil {
		t.Fatal(err)
	}
	cnt.Reset()
	d, err := c.Discover(context.Background(), host+"/acme/widgets:v1")
	if err != nil || len(d.Entries) != 1 {
		t.Fatalf("%v %+v", err, d)
	}
	hits := cnt.Hits()
	if hits["GET /v2/acme/widgets/manifests/v1"] != 1 || hits["HEAD /v2/acme/widgets/manifests/v1"] != 0 {
		t.Errorf("tag fetched %d times, want 1: %v", hits["GET /v2/acme/widgets/manifests/v1"], hits)
	}
	if hits["GET /v2/acme/widgets/referrers/"+d.Digest] != 1 {
		t.Errorf("referrers by digest not called once: %v", hits)
	}
}

func TestFallbackWhenReferrers404(t *testing.T) {
	ctx := context.Background()
	h, stop := ocitest.NewOlaregHandler(nil)
	host := serve(t, h, stop, ocitest.NoReferrersAPI)
	img := pushImage(t, host, "acme/widgets")
	got, err := newClient(t).Attach(ctx, img, attachment(0))
	if err != nil || got[0].Mode != ModeTagSchema {
		t.Fatalf("Attach = %+v, %v; want tag schema", got, err)
	}
	d, err := newClient(t).Discover(ctx, img)
	if err != nil || d.Mode != ModeTagSchema || len(d.Entries) != 1 {
		t.Fatalf("Discover = %+v, %v", d, err)
	}
	if d.Entries[0].Annotations.EntryID != attachment(0).Annotations.EntryID {
		t.Errorf("tag index lost the annotations: %+v", d.Entries[0].Descriptor)
	}
}

// pushOther pushes a referrer of another artifact type.
func pushOther(t *testing.T, c *Client, img string) {
	t.Helper()
	ctx := context.Background()
	d, err := name.NewDigest(img, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.repository(ctx, d.Context(), true)
	if err != nil {
		t.Fatal(err)
	}
	subj, _, err := rc.getManifest(ctx, d.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.uploadBlob(ctx, blob{desc: emptyConfig, data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	sbom := newBlob("application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`), "")
	if err := rc.uploadBlob(ctx, sbom); err != nil {
		t.Fatal(err)
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":"application/spdx+json","config":{"mediaType":%q,"digest":%q,"size":2},"layers":[{"mediaType":"application/spdx+json","digest":%q,"size":%d}],"subject":{"mediaType":%q,"digest":%q,"size":%d}}`,
		ManifestMediaType, EmptyMediaType, EmptyDigest, sbom.desc.Digest, sbom.desc.Size, subj.mediaType, subj.digest, len(subj.body))
	if _, err := rc.putManifest(ctx, digestOf([]byte(m)), ManifestMediaType, []byte(m), ""); err != nil {
		t.Fatal(err)
	}
}

func TestFilterIgnoredByRegistry(t *testing.T) {
	ctx := context.Background()
	h, stop := ocitest.NewOlaregHandler(nil)
	host := serve(t, h, stop, ocitest.IgnoreFilter)
	img := pushImage(t, host, "acme/widgets")
	c := newClient(t)
	if _, err := c.Attach(ctx, img, attachment(0)); err != nil {
		t.Fatal(err)
	}
	pushOther(t, c, img)
	d, err := c.Discover(ctx, img)
	if err != nil || len(d.Entries) != 1 || d.Entries[0].Descriptor.ArtifactType != ArtifactType {
		t.Fatalf("filtered Discover = %+v, %v; want only ours", d, err)
	}
	all, err := c.Discover(ctx, img, WithArtifactType(""))
	if err != nil || len(all.Entries) != 2 {
		t.Fatalf("unfiltered Discover = %+v, %v; want 2", all, err)
	}
}

// TestPagination: 25 referrers served 10 a page are all found, each page read once, and
// no manifest is fetched (the listing carries the annotations).
func TestPagination(t *testing.T) {
	ctx := context.Background()
	h, stop := ocitest.NewOlaregHandler(nil)
	cnt := &ocitest.Counter{Next: ocitest.Paginate(h, 10)}
	host := serve(t, cnt, stop)
	img := pushImage(t, host, "acme/widgets")
	c := newClient(t)
	for i := range 25 {
		if _, err := c.Attach(ctx, img, attachment(i)); err != nil {
			t.Fatal(err)
		}
	}
	cnt.Reset()
	d, err := c.Discover(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Entries) != 25 || d.Pages != 3 {
		t.Fatalf("got %d entries on %d pages, want 25 on 3", len(d.Entries), d.Pages)
	}
	for path, n := range cnt.Hits() {
		if strings.Contains(path, "/manifests/") || strings.Contains(path, "/blobs/") {
			t.Errorf("listing fetched %s %d times", path, n)
		}
	}
	cnt.Reset()
	d, err = c.Discover(ctx, img, WithContent())
	if err != nil || len(d.Entries) != 25 {
		t.Fatal(err)
	}
	for path, n := range cnt.Hits() {
		if n != 1 && !strings.Contains(path, "/referrers/") {
			t.Errorf("%s fetched %d times, want once", path, n)
		}
	}
}

// TestOlaregNativePagination uses olareg's own size-based paging and relative Link URLs.
func TestOlaregNativePagination(t *testing.T) {
	ctx := context.Background()
	h, stop := ocitest.NewOlaregHandler(func(c *ocitest.OlaregConfig) { c.API.Referrer.Limit = 3000 })
	host := serve(t, h, stop)
	img := pushImage(t, host, "acme/widgets")
	c := newClient(t)
	for i := range 12 {
		if _, err := c.Attach(ctx, img, attachment(i)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := c.Discover(ctx, img)
	if err != nil || len(d.Entries) != 12 || d.Pages < 2 {
		t.Fatalf("Discover = %v; %d entries on %d pages", err, len(d.Entries), d.Pages)
	}
}

func TestRetryAfter429(t *testing.T) {
	ctx := context.Background()
	h, stop := ocitest.NewOlaregHandler(nil)
	host := serve(t, h, stop, func(h http.Handler) http.Handler { return ocitest.TooManyRequests(h, "/referrers/", 2, "3") })
	img := pushImage(t, host, "acme/widgets")
	c := newClient(t)
	var mu sync.Mutex
	var slept []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) error {
		mu.Lock()
		slept = append(slept, d)
		mu.Unlock()
		return nil
	}
	if _, err := c.Attach(ctx, img, attachment(0)); err != nil {
		t.Fatal(err)
	}
	d, err := c.Discover(ctx, img)
	if err != nil || len(d.Entries) != 1 {
		t.Fatalf("Discover after 429s = %+v, %v", d, err)
	}
	if len(slept) != 2 || slept[0] != 3*time.Second || slept[1] != 3*time.Second {
		t.Errorf("slept %v, want [3s 3s] from Retry-After", slept)
	}
	if got := retryAfter(time.Unix(100, 0).UTC().Format(http.TimeFormat), time.Unix(90, 0)); got != 10*time.Second {
		t.Errorf("HTTP-date Retry-After = %v, want 10s", got)
	}
}

func TestBadRegistryResponses(t *testing.T) {
	ctx := context.Background()
	huge := append([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`),
		bytes.Repeat([]byte(" "), 5<<20)...)
	huge = append(huge, "]}"...)
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"malformed", []byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:nothex"`), ErrMalformedIndex},
		{"bad digest", []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:zz","size":1}]}`), ErrMalformedIndex},
		{"huge", huge, ErrTooLarge},
		{"deep", []byte(strings.Repeat("[", 100) + strings.Repeat("]", 100)), ErrMalformedIndex},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, stop := ocitest.NewOlaregHandler(nil)
			host := serve(t, h, stop, func(h http.Handler) http.Handler {
				return ocitest.Static(h, "/referrers/", http.StatusOK, IndexMediaType, tc.body)
			})
			img := pushImage(t, host, "acme/widgets")
			_, err := newClient(t).Discover(ctx, img)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLayerDigestMismatch(t *testing.T) {
	ctx := context.Background()
	a := attachment(3)
	corrupt := newBlob(PreimageMediaType, a.Preimage, "preimage.intoto.json").desc.Digest
	h, stop := ocitest.NewOlaregHandler(nil)
	host := serve(t, h, stop, func(h http.Handler) http.Handler {
		return ocitest.Rewrite(h, "/blobs/"+corrupt, func(b []byte) []byte { return bytes.ToUpper(b) })
	})
	img := pushImage(t, host, "acme/widgets")
	c := newClient(t)
	if _, err := c.Attach(ctx, img, a); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Attach(ctx, img, attachment(4)); err != nil {
		t.Fatal(err)
	}
	d, err := c.Discover(ctx, img, WithContent())
	if err != nil || len(d.Entries) != 2 {
		t.Fatalf("%+v %v", d, err)
	}
	for _, e := range d.Entries {
		bad := e.Annotations.EntryID == a.Annotations.EntryID
		if bad != errors.Is(e.Err, ErrDigestMismatch) {
			t.Errorf("entry %s: err = %v (corrupted: %v)", e.Annotations.EntryID[60:], e.Err, bad)
		}
	}
}

func TestOversizeManifest(t *testing.T) {
	ctx := context.Background()
	h, stop := ocitest.NewOlaregHandler(nil)
	host := serve(t, h, stop)
	img := pushImage(t, host, "acme/widgets")
	if _, err := newClient(t).Attach(ctx, img, attachment(0)); err != nil {
		t.Fatal(err)
	}
	// The referrer manifest (~1 KiB) exceeds a 600-byte limit; the image manifest does not.
	c := newClient(t, WithMaxManifestSize(600))
	d, err := c.Discover(ctx, img, WithContent())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Entries) != 1 || !errors.Is(d.Entries[0].Err, ErrTooLarge) {
		t.Errorf("entries %+v, want one with ErrTooLarge", d.Entries)
	}
	if _, err := newClient(t, WithMaxManifestSize(100)).Discover(ctx, host+"/acme/widgets:v1"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize subject manifest: err = %v", err)
	}
}

func TestPlainHTTPRefused(t *testing.T) {
	c := newClient(t)
	req, _ := http.NewRequest(http.MethodGet, "http://10.1.2.3:5000/v2/", nil)
	if _, err := (httpsOnly{c: c, inner: failTransport{}}).RoundTrip(req); !errors.Is(err, ErrInsecureRefused) {
		t.Errorf("plain HTTP to a private address: err = %v, want ErrInsecureRefused", err)
	}
	c2 := newClient(t, WithInsecureRegistry("10.1.2.3:5000"))
	if _, err := (httpsOnly{c: c2, inner: failTransport{}}).RoundTrip(req); !errors.Is(err, errSentinelTransport) {
		t.Errorf("--insecure-registry host refused: %v", err)
	}
	for host, want := range map[string]bool{"localhost:5000": true, "127.0.0.1:1": true, "[::1]:5000": true, "10.0.0.1:80": false, "ghcr.io": false} {
		if isLoopback(host) != want {
			t.Errorf("isLoopback(%q) != %v", host, want)
		}
	}
}

var errSentinelTransport = errors.New("transport reached")

type failTransport struct{}

func (failTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errSentinelTransport
}
