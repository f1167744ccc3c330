package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPinManifests pins the repository's own Tekton and GitLab manifests:
// every asset names the given image by digest (the shell variant for GitLab)
// and no placeholder is left.
func TestPinManifests(t *testing.T) {
	image := "127.0.0.1:5000/trustfabric/trustfabric:v1.2.3@sha256:" + strings.Repeat("ab", 32)
	shell := "127.0.0.1:5000/trustfabric/trustfabric:v1.2.3-shell@sha256:" + strings.Repeat("cd", 32)
	out := t.TempDir()
	written, err := PinManifests(filepath.Join("..", ".."), out, image, shell)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != len(Manifests) {
		t.Fatalf("wrote %v", written)
	}
	for _, m := range Manifests {
		b, err := os.ReadFile(filepath.Join(out, m.Asset))
		if err != nil {
			t.Fatal(err)
		}
		want, other := image, shell
		if m.Shell {
			want, other = shell, image
		}
		if !strings.Contains(string(b), want) || strings.Contains(string(b), other) || strings.Contains(string(b), PlaceholderDigest) {
			t.Errorf("%s: does not name %s alone by digest:\n%s", m.Asset, want, b)
		}
	}

	for _, bad := range []string{"", "ghcr.io/trustfabric/trustfabric:v1", "ghcr.io/x@sha256:abc", "ghcr.io/x@" + PlaceholderDigest} {
		if _, err := PinManifests(filepath.Join("..", ".."), t.TempDir(), bad, shell); !errors.Is(err, ErrBadImageRef) {
			t.Errorf("image %q: got %v, want ErrBadImageRef", bad, err)
		}
	}
	// A manifest that names another image (or none) cannot be released.
	root := t.TempDir()
	for _, m := range Manifests {
		p := filepath.Join(root, m.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("image: docker.io/library/golang:1.26\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := PinManifests(root, t.TempDir(), image, shell); !errors.Is(err, ErrNoPlaceholder) {
		t.Errorf("manifest without the placeholder: got %v, want ErrNoPlaceholder", err)
	}
}
