package oci

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
)

// setup50 serves a registry with one image carrying 50 Trustfabric referrers; on the
// referrers-API registry the listing is forced into pages of 10.
func setup50(b *testing.B, be backend) (img string) {
	b.Helper()
	h, stop := be.new()
	wrap := []func(http.Handler) http.Handler{}
	if be.mode == ModeReferrersAPI {
		wrap = append(wrap, func(h http.Handler) http.Handler { return ocitest.Paginate(h, 10) })
	}
	host := serve(b, h, stop, wrap...)
	img = pushImage(b, host, "acme/widgets")
	c := newClient(b)
	for i := range 50 {
		if _, err := c.Attach(context.Background(), img, attachment(i)); err != nil {
			b.Fatal(err)
		}
	}
	return img
}

// BenchmarkDiscover50 lists 50 referrers (pages of 10 on the API registry), against two
// baselines measured in the same run on the same registry:
//   - ggcr: go-containerregistry remote.Referrers (one request; it does not follow Link
//     pagination, so it returns only the first page: a lower bound, not a competitor);
//   - rawpages: the bare HTTP GETs of every page with no parsing (the minimum any client
//     that sees all 50 entries must do).
func BenchmarkDiscover50(b *testing.B) {
	ctx := context.Background()
	for _, be := range backends {
		img := setup50(b, be)
		b.Run(be.name+"/trustfabric", func(b *testing.B) {
			c := newClient(b)
			for b.Loop() {
				d, err := c.Discover(ctx, img)
				if err != nil || len(d.Entries) != 50 {
					b.Fatalf("%v, %d entries", err, len(d.Entries))
				}
			}
		})
		b.Run(be.name+"/trustfabric-content", func(b *testing.B) {
			c := newClient(b)
			for b.Loop() {
				d, err := c.Discover(ctx, img, WithContent())
				if err != nil || len(d.Entries) != 50 || d.Entries[49].Err != nil {
					b.Fatalf("%v, %d entries", err, len(d.Entries))
				}
			}
		})
		b.Run(be.name+"/ggcr", func(b *testing.B) {
			d, err := name.NewDigest(img)
			if err != nil {
				b.Fatal(err)
			}
			p, err := remote.NewPuller()
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := remote.Referrers(d, remote.Reuse(p), remote.WithContext(ctx)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(be.name+"/rawpages", func(b *testing.B) {
			d, _ := name.NewDigest(img)
			first := "http://" + d.RegistryStr() + "/v2/" + d.RepositoryStr() + "/referrers/" + d.DigestStr()
			if be.mode == ModeTagSchema {
				first = "http://" + d.RegistryStr() + "/v2/" + d.RepositoryStr() + "/manifests/" + fallbackTag(d.DigestStr())
			}
			for b.Loop() {
				for u := first; u != ""; {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
					req.Header.Set("Accept", IndexMediaType)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					base, _ := url.Parse(u)
					next, _ := resolveLink(resp.Header.Get("Link"), base)
					u = ""
					if next != nil {
						u = next.String()
					}
				}
			}
		})
	}
}
