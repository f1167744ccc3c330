package oci

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/trustfabric/trustfabric/internal/jsonlimit"
)

// maxJSONDepth bounds the nesting of manifests and indexes we parse.
const maxJSONDepth = 32

// checkDigest validates "sha256:<64 hex>" or "sha512:<128 hex>" (lowercase).
func checkDigest(d string) error {
	alg, enc, ok := strings.Cut(d, ":")
	want := map[string]int{"sha256": 64, "sha512": 128}[alg]
	if !ok || want == 0 || len(enc) != want || strings.ToLower(enc) != enc {
		return fmt.Errorf("digest %q is not sha256:<64 hex> or sha512:<128 hex>", trunc(d))
	}
	if _, err := hex.DecodeString(enc); err != nil {
		return fmt.Errorf("digest %q is not hex", trunc(d))
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// checkDescriptor validates one descriptor's required fields.
func checkDescriptor(d Descriptor) error {
	if err := checkDigest(d.Digest); err != nil {
		return err
	}
	if d.Size < 0 {
		return fmt.Errorf("descriptor %s has negative size", d.Digest)
	}
	if d.MediaType == "" {
		return fmt.Errorf("descriptor %s has no mediaType", d.Digest)
	}
	return nil
}

// parseIndex parses a referrers response or tag-schema index (untrusted bytes; the caller
// has already bounded their size). It checks the media type, schema version, nesting depth,
// entry count and every descriptor. Errors wrap ErrMalformedIndex.
func parseIndex(b []byte, maxEntries int) (*index, error) {
	return parseIndexOf(b, maxEntries, IndexMediaType)
}

// parseIndexOf is parseIndex accepting the given media types in the body.
func parseIndexOf(b []byte, maxEntries int, mediaTypes ...string) (*index, error) {
	if err := jsonlimit.CheckDepth(b, maxJSONDepth); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedIndex, err)
	}
	var ix index
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&ix); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedIndex, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: trailing data after the index", ErrMalformedIndex)
	}
	if ix.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: schemaVersion is %d, want 2", ErrMalformedIndex, ix.SchemaVersion)
	}
	if ix.MediaType != "" && !slices.Contains(mediaTypes, ix.MediaType) {
		return nil, fmt.Errorf("%w: mediaType is %q, want %q", ErrMalformedIndex, trunc(ix.MediaType), strings.Join(mediaTypes, " or "))
	}
	if len(ix.Manifests) > maxEntries {
		return nil, fmt.Errorf("%w: %d entries, the limit is %d", ErrMalformedIndex, len(ix.Manifests), maxEntries)
	}
	for i, m := range ix.Manifests {
		if err := checkDescriptor(m); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrMalformedIndex, i, err)
		}
	}
	return &ix, nil
}

// parseManifest parses an image manifest (untrusted bytes). Errors wrap ErrMalformed.
func parseManifest(b []byte) (*manifest, error) {
	if err := jsonlimit.CheckDepth(b, maxJSONDepth); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: schemaVersion is %d, want 2", ErrMalformed, m.SchemaVersion)
	}
	if err := checkDescriptor(m.Config); err != nil {
		return nil, fmt.Errorf("%w: config: %w", ErrMalformed, err)
	}
	for i, l := range m.Layers {
		if err := checkDescriptor(l); err != nil {
			return nil, fmt.Errorf("%w: layer %d: %w", ErrMalformed, i, err)
		}
	}
	return &m, nil
}
