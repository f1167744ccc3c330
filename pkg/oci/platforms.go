package oci

import (
	"context"
	"fmt"
)

// Manifest is what a reference names: an image manifest, or an image index
// (OCI index or Docker manifest list) with the manifests it lists.
type Manifest struct {
	// Repository and Digest locate it (repository@digest).
	Repository, Digest string
	// MediaType is the manifest's media type as served.
	MediaType string
	// Platforms are the image manifests an index lists (entries of other
	// media types, such as nested indexes or attestation manifests without
	// a platform, are left out); nil for an image manifest.
	Platforms []Descriptor
}

// IsIndex reports whether the manifest is an image index.
func (m *Manifest) IsIndex() bool {
	return m.MediaType == IndexMediaType || m.MediaType == DockerManifestList
}

// Lists reports whether an index lists the manifest digest.
func (m *Manifest) Lists(digest string) bool {
	for _, p := range m.Platforms {
		if p.Digest == digest {
			return true
		}
	}
	return false
}

// GetManifest reads the manifest ref names (a tag or a digest; a digest is
// checked against the body), within the manifest size limit and, for an
// index, the entry limit. Errors wrap ErrImageNotFound, ErrMalformedIndex
// or ErrDigestMismatch when that is the cause.
func (c *Client) GetManifest(ctx context.Context, ref string) (*Manifest, error) {
	r, err := c.parseRef(ref)
	if err != nil {
		return nil, err
	}
	rc, err := c.repository(ctx, r.Context(), false)
	if err != nil {
		return nil, err
	}
	f, found, err := rc.getManifest(ctx, r.Identifier())
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", ref, err)
	}
	if !found {
		return nil, fmt.Errorf("%w: %s", ErrImageNotFound, ref)
	}
	m := &Manifest{Repository: r.Context().String(), Digest: f.digest, MediaType: f.mediaType}
	if !m.IsIndex() {
		return m, nil
	}
	ix, err := parseIndexOf(f.body, c.maxEntries, IndexMediaType, DockerManifestList)
	if err != nil {
		return nil, fmt.Errorf("image index %s: %w", ref, err)
	}
	for _, d := range ix.Manifests {
		if d.MediaType == ManifestMediaType || d.MediaType == DockerManifestType {
			m.Platforms = append(m.Platforms, d)
		}
	}
	return m, nil
}
