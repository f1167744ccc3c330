package ocitest

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// SaveLayout copies the image ref (host/repo@sha256:…, read over plain HTTP:
// the registries of this package) and every referrer of it into a new OCI
// image layout in dir, with go-containerregistry's layout package: the image
// tagged tag (annotation org.opencontainers.image.ref.name) and each
// referrer manifest listed in index.json, as oci.WithLayout reads them. It
// is what an air-gapped gate is given (`trustfabric verify --oci-layout`).
func SaveLayout(ctx context.Context, ref, tag, dir string) error {
	d, err := name.NewDigest(ref, name.Insecure)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	img, err := remote.Image(d, remote.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("read %s: %w", ref, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		return fmt.Errorf("write %s: %w", ref, err)
	}
	refs, err := remote.Referrers(d, remote.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("referrers of %s: %w", ref, err)
	}
	im, err := refs.IndexManifest()
	if err != nil {
		return err
	}
	for _, m := range im.Manifests {
		r, err := remote.Image(d.Context().Digest(m.Digest.String()), remote.WithContext(ctx))
		if err != nil {
			return fmt.Errorf("read referrer %s: %w", m.Digest, err)
		}
		if err := p.AppendImage(r); err != nil {
			return fmt.Errorf("write referrer %s: %w", m.Digest, err)
		}
	}
	return nil
}
