package oci

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestGetManifest(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h, stop := b.new()
			host := serve(t, h, stop)
			idx, kids := pushIndex(t, host, "acme/multi", 3)
			c := newClient(t)
			m, err := c.GetManifest(ctx, idx)
			if err != nil {
				t.Fatal(err)
			}
			if !m.IsIndex() || len(m.Platforms) != 3 || m.Repository+"@"+m.Digest != idx {
				t.Fatalf("index %s: %+v", idx, m)
			}
			for _, k := range kids {
				if !m.Lists(k.String()) {
					t.Errorf("the index does not list %s", k)
				}
			}
			p, err := c.GetManifest(ctx, host+"/acme/multi@"+kids[0].String())
			if err != nil {
				t.Fatal(err)
			}
			if p.IsIndex() || p.Platforms != nil || p.Lists(kids[1].String()) {
				t.Errorf("platform manifest read as %+v", p)
			}
			img := pushImage(t, host, "acme/single")
			tag := strings.SplitN(img, "@", 2)[0] + ":v1"
			s, err := c.GetManifest(ctx, tag)
			if err != nil {
				t.Fatal(err)
			}
			if s.IsIndex() || s.Repository+"@"+s.Digest != img {
				t.Errorf("%s resolved to %+v, want %s", tag, s, img)
			}
			if _, err := c.GetManifest(ctx, host+"/acme/none:v1"); !errors.Is(err, ErrImageNotFound) {
				t.Errorf("missing image: %v, want ErrImageNotFound", err)
			}
		})
	}
}
