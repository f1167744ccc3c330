package provenance

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/trustfabric/trustfabric/pkg/ci"
)

// ErrSubjectNotCovered is returned by [Generate] when a user-supplied statement does not
// list a subject the caller named.
var ErrSubjectNotCovered = errors.New("statement does not cover the subject")

// Resolver resolves an image reference (tag or digest) to its repository name and
// manifest digest ("sha256:<hex>"). pkg/oci's Client implements it.
type Resolver interface {
	Resolve(ctx context.Context, ref string) (repository, digest string, err error)
}

// Request says what [Generate] should describe.
type Request struct {
	// Images are image references (name[:tag] or name@digest). A tag is resolved to a
	// digest once, through Resolver.
	Images []string
	// Files are paths of files to describe by their SHA-256.
	Files []string
	// Supplied, when non-nil, is a user-supplied in-toto statement or DSSE envelope used
	// as is instead of building provenance; Images and Files must then be among its subjects.
	Supplied []byte
	// SuppliedKeys verify a Supplied DSSE envelope (one signature must verify, see
	// [VerifyDSSE]); an envelope is refused without them, never carried unchecked.
	SuppliedKeys []crypto.PublicKey
	// Getenv reads the CI environment (os.Getenv when nil).
	Getenv func(string) string
	// Resolver resolves image tags; required when Images is non-empty.
	Resolver Resolver
}

// Generate builds (or accepts) the in-toto statement for req. The returned Statement's Raw
// bytes are the preimage to sign.
func Generate(ctx context.Context, req Request, opts ...Option) (*Statement, error) {
	var subjects []Subject
	for _, ref := range req.Images {
		s, err := ImageSubject(ctx, ref, req.Resolver)
		if err != nil {
			return nil, err
		}
		subjects = append(subjects, s)
	}
	for _, p := range req.Files {
		s, err := FileSubject(p)
		if err != nil {
			return nil, err
		}
		subjects = append(subjects, s)
	}
	if req.Supplied != nil {
		st, err := ParseStatement(req.Supplied)
		if err != nil {
			return nil, err
		}
		for _, s := range subjects {
			if !st.Covers(s) {
				return nil, fmt.Errorf("%w: %s (sha256:%s)", ErrSubjectNotCovered, s.Name, s.Digest["sha256"])
			}
		}
		if st.MediaType == DSSEMediaType {
			if len(req.SuppliedKeys) == 0 {
				return nil, fmt.Errorf("%w: the supplied statement is a DSSE envelope: give the key its signature verifies with (--predicate-key), or the bare in-toto statement", ErrDSSESignature)
			}
			if err := VerifyDSSE(req.Supplied, req.SuppliedKeys); err != nil {
				return nil, err
			}
		}
		return st, nil
	}
	getenv := req.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	c, err := ci.Detect(getenv)
	if err != nil {
		return nil, fmt.Errorf("read CI context: %w", err)
	}
	raw, err := Build(c, subjects, opts...)
	if err != nil {
		return nil, err
	}
	return ParseStatement(raw)
}

// ImageSubject describes the image ref: its repository name and manifest digest. A tag is
// resolved once through r; a reference with a digest needs no registry call.
func ImageSubject(ctx context.Context, ref string, r Resolver) (Subject, error) {
	if name, dig, ok := strings.Cut(ref, "@"); ok {
		alg, hexd, _ := strings.Cut(dig, ":")
		if alg == "sha256" && len(hexd) == 64 {
			if _, err := hex.DecodeString(hexd); err == nil && hexd == strings.ToLower(hexd) {
				return Subject{Name: stripTag(name), Digest: map[string]string{"sha256": hexd}}, nil
			}
		}
		return Subject{}, fmt.Errorf("image %q: digest must be sha256:<64 lowercase hex>", ref)
	}
	if r == nil {
		return Subject{}, fmt.Errorf("image %q has no digest and no registry resolver was given", ref)
	}
	repo, dig, err := r.Resolve(ctx, ref)
	if err != nil {
		return Subject{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	hexd, ok := strings.CutPrefix(dig, "sha256:")
	if !ok {
		return Subject{}, fmt.Errorf("resolve %s: registry returned non-sha256 digest %q", ref, dig)
	}
	return Subject{Name: repo, Digest: map[string]string{"sha256": hexd}}, nil
}

// stripTag removes a ":tag" from the last path segment of an image name.
func stripTag(name string) string {
	slash := strings.LastIndex(name, "/")
	if colon := strings.LastIndex(name, ":"); colon > slash {
		return name[:colon]
	}
	return name
}

// FileSubject describes a file by its base name and SHA-256.
func FileSubject(path string) (Subject, error) {
	f, err := os.Open(path)
	if err != nil {
		return Subject{}, fmt.Errorf("subject file: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return Subject{}, fmt.Errorf("subject file %s: %w", path, err)
	}
	return Subject{Name: filepath.Base(path), Digest: map[string]string{"sha256": hex.EncodeToString(h.Sum(nil))}}, nil
}
