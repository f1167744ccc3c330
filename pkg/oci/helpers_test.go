package oci

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
	"github.com/trustfabric/trustfabric/pkg/oci/ocitest/distreg"
)

// backend is a real registry kind the tests run against.
type backend struct {
	name string
	mode Mode
	new  func() (http.Handler, func())
}

var backends = []backend{
	{"olareg", ModeReferrersAPI, func() (http.Handler, func()) { return ocitest.NewOlaregHandler(nil) }},
	{"distribution", ModeTagSchema, func() (http.Handler, func()) {
		return distreg.NewHandler(context.Background()), func() {}
	}},
}

// serve starts h (wrapped by wrap, if any) and returns its host.
func serve(t testing.TB, h http.Handler, stop func(), wrap ...func(http.Handler) http.Handler) string {
	t.Helper()
	for _, w := range wrap {
		h = w(h)
	}
	r := ocitest.Serve(h, stop)
	t.Cleanup(r.Close)
	return r.Host
}

// pushImage pushes a random single-platform image tagged v1 and returns repo@digest.
func pushImage(t testing.TB, host, repo string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/" + repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return host + "/" + repo + "@" + d.String()
}

// pushIndex pushes a random index of n images and returns repo@digest and the children.
func pushIndex(t testing.TB, host, repo string, n int) (string, []v1.Hash) {
	t.Helper()
	idx, err := random.Index(128, 1, int64(n))
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/" + repo + ":multi")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var kids []v1.Hash
	for _, m := range im.Manifests {
		kids = append(kids, m.Digest)
	}
	d, _ := idx.Digest()
	return host + "/" + repo + "@" + d.String(), kids
}

func newClient(t testing.TB, opts ...Option) *Client {
	t.Helper()
	opts = append([]Option{WithKeychain(Keychain(func(string) string { return "" })), WithFallbackSettle(10 * time.Millisecond)}, opts...)
	c, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// attachment returns a distinct attachment number i.
func attachment(i int) Attachment {
	return Attachment{
		Statement: []byte(fmt.Sprintf("\xd2\x84statement-%03d", i)),
		Preimage:  []byte(fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","n":%d}`, i)),
		Annotations: Annotations{
			Created:       time.Date(2026, 3, 1, 12, 0, i%60, 0, time.UTC),
			Issuer:        "spiffe://ci.example.org/github/acme/widgets/.github/workflows/release.yml/refs/heads/main",
			Subject:       "oci://registry/acme/widgets@sha256:aaaa",
			TS:            []string{"https://ts.example.org"},
			EntryID:       fmt.Sprintf("%064x", i),
			PredicateType: "https://slsa.dev/provenance/v1",
		},
	}
}
