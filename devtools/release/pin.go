package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// ImageRepo is where the release pushes Trustfabric's container image; the
// CI manifests in the repository name it with PlaceholderDigest (tag
// "unreleased", or "unreleased-shell" for the shell variant GitLab jobs run
// in), which no registry serves.
const (
	ImageRepo         = "ghcr.io/trustfabric/trustfabric"
	PlaceholderDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
)

// Manifest is a CI manifest published as a release asset with the release's
// image pinned by digest.
type Manifest struct {
	Path  string // in the repository
	Asset string // release asset name
	Shell bool   // names the shell variant (a GitLab job runs a script)
}

// Manifests are the Tekton Tasks and StepAction and the GitLab components.
var Manifests = []Manifest{
	{"tekton/task/trustfabric-attest/trustfabric-attest.yaml", "trustfabric-attest.yaml", false},
	{"tekton/task/trustfabric-verify/trustfabric-verify.yaml", "trustfabric-verify.yaml", false},
	{"tekton/stepaction/trustfabric-verify/trustfabric-verify.yaml", "trustfabric-verify-step.yaml", false},
	{"gitlab/templates/attest.yml", "gitlab-attest.yml", true},
	{"gitlab/templates/verify.yml", "gitlab-verify.yml", true},
}

var (
	// ErrBadImageRef: a --pin-image value is not REPOSITORY[:TAG]@sha256:HEX.
	ErrBadImageRef = errors.New("image reference must be REPOSITORY[:TAG]@sha256:<64 hex>")
	// ErrNoPlaceholder: a manifest does not name the image by the placeholder.
	ErrNoPlaceholder = errors.New("no placeholder image reference")

	pinnedRefRE = regexp.MustCompile(`^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+)?@sha256:[0-9a-f]{64}$`)
	plainRE     = regexp.MustCompile(regexp.QuoteMeta(ImageRepo) + `:unreleased@` + regexp.QuoteMeta(PlaceholderDigest))
	shellRE     = regexp.MustCompile(regexp.QuoteMeta(ImageRepo) + `:unreleased-shell@` + regexp.QuoteMeta(PlaceholderDigest))
)

// PinManifests writes each of Manifests, read under root, to out under its
// asset name with the placeholder image reference replaced by image (or
// shellImage for the shell variant), both REPOSITORY[:TAG]@sha256:HEX. A
// manifest without the placeholder, or with one left after replacing, is an
// error: a released manifest must name the released image by digest.
func PinManifests(root, out, image, shellImage string) ([]string, error) {
	for _, ref := range []string{image, shellImage} {
		if !pinnedRefRE.MatchString(ref) || strings.Contains(ref, PlaceholderDigest) {
			return nil, fmt.Errorf("%w: %q", ErrBadImageRef, ref)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	var written []string
	for _, m := range Manifests {
		b, err := os.ReadFile(filepath.Join(root, m.Path))
		if err != nil {
			return nil, err
		}
		re, ref := plainRE, image
		if m.Shell {
			re, ref = shellRE, shellImage
		}
		if !re.Match(b) {
			return nil, fmt.Errorf("%s: %w %s", m.Path, ErrNoPlaceholder, re)
		}
		b = re.ReplaceAllLiteral(b, []byte(ref))
		if strings.Contains(string(b), PlaceholderDigest) {
			return nil, fmt.Errorf("%s: %w: the placeholder digest is still there after pinning", m.Path, ErrNoPlaceholder)
		}
		p := filepath.Join(out, m.Asset)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
		written = append(written, p)
	}
	return written, nil
}
