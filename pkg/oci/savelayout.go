package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
)

// SaveLayout writes the image ref and its transparent statements (the
// referrers [Client.Discover] lists, each with its manifest, config and both
// layers, checked as Discover checks them) to a new OCI image layout in dir,
// for a gate with no network ([WithLayout], `verify --oci-layout`). The
// image is recorded by its manifest (with ref's tag as its
// org.opencontainers.image.ref.name when ref names a tag); its config and
// layers are not copied: the gate does not read them, and an image layout
// may miss referenced blobs (image-layout.md). A referrer that cannot be read
// fails the whole save. dir must not exist or be empty. It returns the
// discovery the layout holds.
func (c *Client) SaveLayout(ctx context.Context, ref, dir string) (*Discovery, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("save layout: %s is not empty", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("save layout: %w", err)
	}
	r, err := c.parseRef(ref)
	if err != nil {
		return nil, err
	}
	rc, err := c.repository(ctx, r.Context(), false)
	if err != nil {
		return nil, err
	}
	image, found, err := rc.getManifest(ctx, r.Identifier())
	if err != nil {
		return nil, fmt.Errorf("save layout: %s: %w", ref, err)
	}
	if !found {
		return nil, fmt.Errorf("%w: %s", ErrImageNotFound, ref)
	}
	d, err := c.Discover(ctx, r.Context().String()+"@"+image.digest, WithContent())
	if err != nil {
		return nil, err
	}
	blobs := map[string][]byte{image.digest: image.body}
	imageDesc := Descriptor{MediaType: image.mediaType, Digest: image.digest, Size: int64(len(image.body))}
	if t, ok := r.(name.Tag); ok {
		imageDesc.Annotations = map[string]string{AnnotationRefName: t.TagStr()}
	}
	listed := []Descriptor{imageDesc}
	for _, e := range d.Entries {
		if e.Err != nil {
			return nil, fmt.Errorf("save layout: referrer %s: %w", e.Descriptor.Digest, e.Err)
		}
		f, found, err := rc.getManifest(ctx, e.Descriptor.Digest)
		if err != nil || !found {
			return nil, fmt.Errorf("save layout: referrer %s: %w", e.Descriptor.Digest, errors.Join(err, ErrImageNotFound))
		}
		m, err := parseManifest(f.body)
		if err != nil {
			return nil, fmt.Errorf("save layout: referrer %s: %w", e.Descriptor.Digest, err)
		}
		if len(m.Layers) != 2 || m.Layers[0].Digest != digestOf(e.Statement) || m.Layers[1].Digest != digestOf(e.Preimage) {
			return nil, fmt.Errorf("%w: save layout: referrer %s changed while it was read", ErrMalformed, e.Descriptor.Digest)
		}
		if m.Config.Digest != EmptyDigest {
			return nil, fmt.Errorf("%w: save layout: referrer %s: config %s is not the empty descriptor", ErrMalformed, e.Descriptor.Digest, m.Config.Digest)
		}
		blobs[f.digest], blobs[EmptyDigest] = f.body, []byte("{}")
		blobs[m.Layers[0].Digest], blobs[m.Layers[1].Digest] = e.Statement, e.Preimage
		listed = append(listed, Descriptor{MediaType: ManifestMediaType, Digest: f.digest, Size: int64(len(f.body)),
			ArtifactType: e.Descriptor.ArtifactType})
	}
	for dg, b := range blobs {
		if !layoutDigest.MatchString(dg) {
			return nil, fmt.Errorf("%w: save layout: digest %q", ErrMalformed, dg)
		}
		p := filepath.Join(dir, filepath.FromSlash(blobPath(dg)))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("save layout: %w", err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, fmt.Errorf("save layout: %w", err)
		}
	}
	idx, err := json.Marshal(index{SchemaVersion: 2, MediaType: IndexMediaType, Manifests: listed})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return nil, fmt.Errorf("save layout: %w", err)
	}
	// index.json last: a layout without it is visibly incomplete.
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		return nil, fmt.Errorf("save layout: %w", err)
	}
	return d, nil
}
