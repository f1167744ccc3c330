package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Attachment is one transparent statement to attach, with its preimage.
type Attachment struct {
	// Statement is the transparent statement (COSE_Sign1 with receipts in label 394).
	Statement []byte
	// Preimage is the payload whose hash the statement signs (an in-toto
	// statement, an SBOM, any content).
	Preimage []byte
	// PreimageMediaType is the statement's declared content type (type/subtype,
	// no parameters). Default application/vnd.in-toto+json.
	PreimageMediaType string
	// PreimageTitle is the preimage layer's org.opencontainers.image.title.
	// Default preimage.intoto.json for in-toto, else "preimage".
	PreimageTitle string
	// Annotations describe the statement in the referrers listing.
	Annotations Annotations
	// ArtifactType is the referrer manifest's artifactType. Default
	// [ArtifactType] (the statements the gate discovers); another type keeps
	// the referrer out of the gate's listing (e.g. a credential's statement).
	ArtifactType string
}

// Attached reports one referrer written.
type Attached struct {
	Subject  string // repository@digest of the image (or index) referred to
	Referrer string // repository@digest of the referrer manifest
	Mode     Mode   // how the registry recorded it
}

// AttachOption configures [Client.Attach].
type AttachOption func(*attachOptions) error

type attachOptions struct{ recursive bool }

// Recursive also attaches the statement to every manifest listed by an image index
// subject (its platform images). Default: only the subject itself.
func Recursive() AttachOption { return func(o *attachOptions) error { o.recursive = true; return nil } }

// Attach pushes a as a referrer of the image ref, which must name a digest
// (repository@sha256:…). It returns one Attached per subject written.
func (c *Client) Attach(ctx context.Context, ref string, a Attachment, opts ...AttachOption) ([]Attached, error) {
	var o attachOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	r, err := c.parseRef(ref)
	if err != nil {
		return nil, err
	}
	d, ok := r.(name.Digest)
	if !ok {
		return nil, fmt.Errorf("%w %q: attach needs IMAGE@sha256:<digest>; resolve the tag first (trustfabric discover prints it)", ErrBadReference, ref)
	}
	if len(a.Statement) == 0 || len(a.Preimage) == 0 {
		return nil, errors.New("attach: statement and preimage must not be empty")
	}
	rc, err := c.repository(ctx, d.Context(), true)
	if err != nil {
		return nil, err
	}
	subj, found, err := rc.getManifest(ctx, d.DigestStr())
	if err != nil {
		return nil, fmt.Errorf("read subject %s: %w", ref, err)
	}
	if !found {
		return nil, fmt.Errorf("%w: %s", ErrImageNotFound, ref)
	}
	pmt := a.PreimageMediaType
	if pmt == "" {
		pmt = PreimageMediaType
	}
	title := a.PreimageTitle
	if title == "" {
		title = "preimage"
		if pmt == PreimageMediaType {
			title += ".intoto.json"
		}
	}
	stmt, pre := newBlob(StatementMediaType, a.Statement, StatementTitle), newBlob(pmt, a.Preimage, title)
	for _, b := range []blob{{desc: emptyConfig, data: []byte("{}")}, stmt, pre} {
		if err := rc.uploadBlob(ctx, b); err != nil {
			return nil, err
		}
	}
	ann := a.Annotations.Map()
	at := a.ArtifactType
	if at == "" {
		at = ArtifactType
	}
	subjects := []Descriptor{{MediaType: subj.mediaType, Digest: subj.digest, Size: int64(len(subj.body))}}
	if o.recursive && (subj.mediaType == IndexMediaType || subj.mediaType == DockerManifestList) {
		ix, err := parseIndex(subj.body, c.maxEntries)
		if err != nil {
			return nil, fmt.Errorf("subject index %s: %w", ref, err)
		}
		for _, m := range ix.Manifests {
			if m.MediaType == ManifestMediaType || m.MediaType == DockerManifestType {
				subjects = append(subjects, Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size})
			}
		}
	}
	var out []Attached
	for _, s := range subjects {
		mode, refDigest, err := c.attachOne(ctx, rc, s, at, stmt, pre, ann)
		if err != nil {
			return out, fmt.Errorf("attach to %s@%s: %w", d.Context(), s.Digest, err)
		}
		out = append(out, Attached{Subject: d.Context().String() + "@" + s.Digest,
			Referrer: d.Context().String() + "@" + refDigest, Mode: mode})
	}
	return out, nil
}

// attachOne pushes the referrer manifest for one subject and makes sure it is listed.
func (c *Client) attachOne(ctx context.Context, rc *repoClient, subject Descriptor, artifactType string, stmt, pre blob, ann map[string]string) (Mode, string, error) {
	body, err := referrerManifest(subject, artifactType, stmt, pre, ann)
	if err != nil {
		return "", "", err
	}
	dig := digestOf(body)
	hdr, err := rc.putManifest(ctx, dig, ManifestMediaType, body, "")
	if err != nil {
		return "", "", err
	}
	if hdr.Get("OCI-Subject") == subject.Digest {
		c.setMode(rc, ModeReferrersAPI)
		return ModeReferrersAPI, dig, nil
	}
	mode, err := c.mode(ctx, rc, subject.Digest)
	if err != nil {
		return "", "", err
	}
	if mode == ModeReferrersAPI {
		return mode, dig, nil
	}
	desc := Descriptor{MediaType: ManifestMediaType, Digest: dig, Size: int64(len(body)), ArtifactType: artifactType,
		Annotations: ann}
	if err := c.addToTagIndex(ctx, rc, subject.Digest, desc); err != nil {
		return "", "", err
	}
	return ModeTagSchema, dig, nil
}

func (c *Client) setMode(rc *repoClient, m Mode) {
	c.mu.Lock()
	c.caps[rc.repo.String()] = m
	c.mu.Unlock()
}

// mode probes (once per repository) whether the registry serves the referrers API:
// 200 with an index content type means yes; 404 (or 400/405/406/501) means the tag schema.
func (c *Client) mode(ctx context.Context, rc *repoClient, subjectDigest string) (Mode, error) {
	c.mu.Lock()
	m, ok := c.caps[rc.repo.String()]
	c.mu.Unlock()
	if ok {
		return m, nil
	}
	resp, err := rc.do(ctx, http.MethodGet, rc.url("/v2/%s/referrers/%s", rc.repo.RepositoryStr(), subjectDigest),
		http.Header{"Accept": {IndexMediaType}}, nil)
	if err != nil {
		return "", err
	}
	switch {
	case resp.StatusCode == http.StatusOK && mediaTypeOf(resp.Header.Get("Content-Type")) == IndexMediaType:
		drain(resp)
		m = ModeReferrersAPI
	case resp.StatusCode == http.StatusOK, noReferrersAPI(resp.StatusCode):
		drain(resp)
		m = ModeTagSchema
	default:
		return "", fmt.Errorf("probe referrers API: %w", statusError(resp))
	}
	c.setMode(rc, m)
	return m, nil
}

// noReferrersAPI reports the statuses that mean "this registry has no referrers API".
func noReferrersAPI(status int) bool {
	switch status {
	case http.StatusNotFound, http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusNotAcceptable, http.StatusNotImplemented:
		return true
	}
	return false
}

// fallbackTag is the referrers tag schema name for a digest: <alg>-<hex>, truncated to
// 32 and 64 characters (distribution-spec "Referrers Tag Schema").
func fallbackTag(digest string) string {
	alg, enc, _ := strings.Cut(digest, ":")
	if len(alg) > 32 {
		alg = alg[:32]
	}
	if len(enc) > 64 {
		enc = enc[:64]
	}
	return alg + "-" + enc
}

// marshalIndex encodes a tag-schema index.
func marshalIndex(ds []Descriptor) ([]byte, error) {
	if ds == nil {
		ds = []Descriptor{}
	}
	b, err := json.Marshal(index{SchemaVersion: 2, MediaType: IndexMediaType, Manifests: ds})
	if err != nil {
		return nil, fmt.Errorf("encode referrers index: %w", err)
	}
	return b, nil
}
