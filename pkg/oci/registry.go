package oci

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// manifestAccept lists the manifest media types we read.
var manifestAccept = strings.Join([]string{ManifestMediaType, IndexMediaType, DockerManifestType, DockerManifestList}, ", ")

// fetched is a manifest read from the registry.
type fetched struct {
	body      []byte
	mediaType string
	digest    string
	etag      string
}

// getManifest GETs a manifest by tag or digest, bounded by the manifest limit. When ref
// is a digest the body is checked against it. found is false on 404.
func (r *repoClient) getManifest(ctx context.Context, ref string) (f *fetched, found bool, err error) {
	hdr := http.Header{"Accept": {manifestAccept}, "Cache-Control": {"no-cache"}}
	resp, err := r.do(ctx, http.MethodGet, r.url("/v2/%s/manifests/%s", r.repo.RepositoryStr(), ref), hdr, nil)
	if err != nil {
		return nil, false, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		drain(resp)
		return nil, false, nil
	default:
		return nil, false, statusError(resp)
	}
	body, err := readLimited(resp, r.c.maxManifest, "manifest "+ref)
	if err != nil {
		return nil, true, err
	}
	f = &fetched{body: body, mediaType: mediaTypeOf(resp.Header.Get("Content-Type")), digest: digestOf(body),
		etag: resp.Header.Get("ETag")}
	if strings.Contains(ref, ":") && ref != f.digest {
		return nil, true, fmt.Errorf("%w: manifest %s has digest %s", ErrDigestMismatch, ref, f.digest)
	}
	return f, true, nil
}

func mediaTypeOf(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(mt)
}

// blobExists HEADs a blob.
func (r *repoClient) blobExists(ctx context.Context, digest string) (bool, error) {
	resp, err := r.do(ctx, http.MethodHead, r.url("/v2/%s/blobs/%s", r.repo.RepositoryStr(), digest), nil, nil)
	if err != nil {
		return false, err
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, &StatusError{Method: http.MethodHead, URL: resp.Request.URL.Redacted(), Status: resp.StatusCode}
}

// uploadBlob uploads b unless the registry already has it (POST, then a monolithic PUT).
func (r *repoClient) uploadBlob(ctx context.Context, b blob) error {
	if ok, err := r.blobExists(ctx, b.desc.Digest); err != nil || ok {
		return err
	}
	resp, err := r.do(ctx, http.MethodPost, r.url("/v2/%s/blobs/uploads/", r.repo.RepositoryStr()), nil, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("start upload of %s: %w", b.desc.Digest, statusError(resp))
	}
	drain(resp)
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return fmt.Errorf("start upload of %s: registry sent no usable Location", b.desc.Digest)
	}
	q := loc.Query()
	q.Set("digest", b.desc.Digest)
	loc.RawQuery = q.Encode()
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, err = r.do(ctx, http.MethodPut, loc.String(), hdr, b.data)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("upload %s: %w", b.desc.Digest, statusError(resp))
	}
	drain(resp)
	return nil
}

// putManifest PUTs a manifest under ref (a digest or a tag) and returns the response
// headers. ifMatch, when set, makes the write conditional (RFC 9110 §13.1.1); a 412 is
// returned as errPreconditionFailed.
func (r *repoClient) putManifest(ctx context.Context, ref, mediaType string, body []byte, ifMatch string) (http.Header, error) {
	hdr := http.Header{"Content-Type": {mediaType}}
	if ifMatch != "" {
		hdr.Set("If-Match", ifMatch)
	}
	resp, err := r.do(ctx, http.MethodPut, r.url("/v2/%s/manifests/%s", r.repo.RepositoryStr(), ref), hdr, body)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusOK:
		drain(resp)
		return resp.Header, nil
	case http.StatusPreconditionFailed:
		drain(resp)
		return nil, errPreconditionFailed
	}
	return nil, fmt.Errorf("push manifest %s: %w", ref, statusError(resp))
}

var errPreconditionFailed = fmt.Errorf("registry rejected the conditional write (412)")
