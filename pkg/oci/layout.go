package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Limits of the image layout reader (untrusted files).
const (
	maxLayoutIndex    = 16 << 20 // index.json
	maxLayoutManifest = 4 << 20  // each manifest it lists, read to find referrers
	maxLayoutEntries  = 100000   // descriptors in index.json
)

// AnnotationRefName names a manifest in an image layout's index.json (OCI
// Image Layout, "index.json file"); [WithLayout] resolves tags with it.
const AnnotationRefName = "org.opencontainers.image.ref.name"

// ErrLayout is wrapped by the errors of an OCI image layout that cannot be
// read.
var ErrLayout = errors.New("bad OCI image layout")

// WithLayout makes the client read images and their referrers from the OCI
// image layout in dir (OCI Image Spec v1.1, image-layout.md) instead of a
// registry, for a gate with no network: every registry and repository name
// resolves to the layout, so an image keeps the name its statements give it
// (host/repo@sha256:…). The client opens no network connection and looks up
// no credentials. A tag is the org.opencontainers.image.ref.name annotation
// of an index.json entry (the bare tag, or a reference ending in ":tag");
// the referrers of a manifest are the image manifests listed in index.json
// whose subject is that manifest (go-containerregistry's layout.AppendImage
// writes them so). Writes (Attach) are refused. The layout's content is
// checked like a registry's: manifests and blobs against their digests, with
// the client's size limits; index.json is read at most 16 MiB and 100,000
// entries, each listed manifest at most 4 MiB. Default: registries.
func WithLayout(dir string) Option {
	return func(c *Client) error {
		l, err := openLayout(dir)
		if err != nil {
			return err
		}
		c.base = l
		c.keychain = authn.NewMultiKeychain() // anonymous: no credential helpers run
		return nil
	}
}

// layout serves the registry read API (distribution spec: /v2/, manifests,
// blobs, referrers) from an image layout, as an http.RoundTripper.
type layout struct {
	root    *os.Root
	entries []Descriptor

	once      sync.Once
	referrers map[string][]Descriptor
	scanErr   error
}

var layoutDigest = regexp.MustCompile(`^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$`)

func openLayout(dir string) (*layout, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLayout, err)
	}
	l := &layout{root: root}
	b, err := l.read("oci-layout", 1<<10)
	if err != nil {
		return nil, err
	}
	var marker struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(b, &marker); err != nil || marker.Version == "" {
		return nil, fmt.Errorf("%w %s: oci-layout has no imageLayoutVersion", ErrLayout, dir)
	}
	if b, err = l.read("index.json", maxLayoutIndex); err != nil {
		return nil, err
	}
	if l.entries, err = parseLayoutIndex(b); err != nil {
		return nil, fmt.Errorf("%w %s: index.json: %w", ErrLayout, dir, err)
	}
	return l, nil
}

// parseLayoutIndex parses index.json (untrusted bytes): an image index of
// at most maxLayoutEntries descriptors with valid digests.
func parseLayoutIndex(b []byte) ([]Descriptor, error) {
	var idx struct {
		Manifests []Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, err
	}
	if len(idx.Manifests) > maxLayoutEntries {
		return nil, fmt.Errorf("%d entries (at most %d)", len(idx.Manifests), maxLayoutEntries)
	}
	for _, d := range idx.Manifests {
		if !layoutDigest.MatchString(d.Digest) {
			return nil, fmt.Errorf("entry digest %q", d.Digest)
		}
	}
	return idx.Manifests, nil
}

// read reads a file of the layout, at most limit bytes.
func (l *layout) read(name string, limit int64) ([]byte, error) {
	f, err := l.root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLayout, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrLayout, name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrLayout, name, limit)
	}
	return b, nil
}

func blobPath(digest string) string {
	alg, hex, _ := strings.Cut(digest, ":")
	return "blobs/" + alg + "/" + hex
}

// scan finds the referrers of every manifest: the image manifests listed in
// index.json that have a subject.
func (l *layout) scan() (map[string][]Descriptor, error) {
	l.once.Do(func() {
		l.referrers = map[string][]Descriptor{}
		for _, d := range l.entries {
			if d.MediaType != ManifestMediaType {
				continue
			}
			b, err := l.read(blobPath(d.Digest), maxLayoutManifest)
			if err != nil {
				l.scanErr = err
				return
			}
			var m struct {
				ArtifactType string `json:"artifactType"`
				Config       struct {
					MediaType string `json:"mediaType"`
				} `json:"config"`
				Subject     *Descriptor       `json:"subject"`
				Annotations map[string]string `json:"annotations"`
			}
			if err := json.Unmarshal(b, &m); err != nil {
				l.scanErr = fmt.Errorf("%w: manifest %s: %w", ErrLayout, d.Digest, err)
				return
			}
			if m.Subject == nil {
				continue
			}
			at := m.ArtifactType
			if at == "" {
				at = m.Config.MediaType
			}
			l.referrers[m.Subject.Digest] = append(l.referrers[m.Subject.Digest], Descriptor{
				MediaType: d.MediaType, Digest: d.Digest, Size: int64(len(b)), ArtifactType: at, Annotations: m.Annotations})
		}
	})
	return l.referrers, l.scanErr
}

// RoundTrip answers GET and HEAD of the registry read API from the layout.
// Any repository name is the layout.
func (l *layout) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return l.respond(r, http.StatusMethodNotAllowed, "text/plain", []byte("read-only OCI image layout"))
	}
	p := r.URL.Path
	if p == "/v2/" || p == "/v2" {
		return l.respond(r, http.StatusOK, "application/json", []byte("{}"))
	}
	for _, kind := range []string{"/manifests/", "/blobs/", "/referrers/"} {
		i := strings.LastIndex(p, kind)
		if !strings.HasPrefix(p, "/v2/") || i < len("/v2/") {
			continue
		}
		ref := p[i+len(kind):]
		switch kind {
		case "/manifests/":
			return l.manifest(r, ref)
		case "/blobs/":
			return l.blob(r, ref)
		default:
			return l.listReferrers(r, ref)
		}
	}
	return l.respond(r, http.StatusNotFound, "text/plain", []byte("not in the OCI image layout"))
}

func (l *layout) manifest(r *http.Request, ref string) (*http.Response, error) {
	mediaType := ""
	if !layoutDigest.MatchString(ref) {
		var found *Descriptor
		for i, d := range l.entries {
			name := d.Annotations[AnnotationRefName]
			if name == ref || strings.HasSuffix(name, ":"+ref) {
				found = &l.entries[i]
				break
			}
		}
		if found == nil {
			return l.respond(r, http.StatusNotFound, "text/plain", []byte("no manifest tagged "+ref))
		}
		ref, mediaType = found.Digest, found.MediaType
	}
	b, err := l.read(blobPath(ref), maxLayoutManifest)
	if errors.Is(err, fs.ErrNotExist) {
		return l.respond(r, http.StatusNotFound, "text/plain", []byte("no manifest "+ref))
	}
	if err != nil {
		return nil, err
	}
	if mediaType == "" {
		for _, d := range l.entries {
			if d.Digest == ref {
				mediaType = d.MediaType
			}
		}
	}
	if mediaType == "" {
		var m struct {
			MediaType string `json:"mediaType"`
		}
		_ = json.Unmarshal(b, &m)
		mediaType = m.MediaType
	}
	resp, err := l.respond(r, http.StatusOK, mediaType, b)
	if err == nil {
		resp.Header.Set("Docker-Content-Digest", ref)
	}
	return resp, err
}

func (l *layout) blob(r *http.Request, digest string) (*http.Response, error) {
	if !layoutDigest.MatchString(digest) {
		return l.respond(r, http.StatusNotFound, "text/plain", []byte("bad digest"))
	}
	f, err := l.root.Open(blobPath(digest))
	if errors.Is(err, fs.ErrNotExist) {
		return l.respond(r, http.StatusNotFound, "text/plain", []byte("no blob "+digest))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLayout, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %w", ErrLayout, err)
	}
	resp := &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/octet-stream"}, "Docker-Content-Digest": {digest},
			"Content-Length": {strconv.FormatInt(fi.Size(), 10)}},
		ContentLength: fi.Size(), Body: f, Request: r}
	if r.Method == http.MethodHead {
		f.Close()
		resp.Body = http.NoBody
	}
	return resp, nil
}

func (l *layout) listReferrers(r *http.Request, digest string) (*http.Response, error) {
	all, err := l.scan()
	if err != nil {
		return nil, err
	}
	ds := all[digest]
	if ds == nil {
		ds = []Descriptor{}
	}
	b, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": IndexMediaType, "manifests": ds})
	if err != nil {
		return nil, err
	}
	return l.respond(r, http.StatusOK, IndexMediaType, b)
}

func (l *layout) respond(r *http.Request, status int, contentType string, body []byte) (*http.Response, error) {
	resp := &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {contentType}, "Content-Length": {strconv.Itoa(len(body))}},
		ContentLength: int64(len(body)), Body: io.NopCloser(bytes.NewReader(body)), Request: r}
	if r.Method == http.MethodHead {
		resp.Body = http.NoBody
	}
	return resp, nil
}
