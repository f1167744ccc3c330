package oci

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
)

// Entry is one referrer found by [Client.Discover].
type Entry struct {
	// Descriptor is the referrer manifest as listed (artifactType and annotations included).
	Descriptor Descriptor
	// Annotations are the dev.trustfabric.* facts read from the listing (or, when the
	// listing lacked them, from the manifest).
	Annotations Annotations
	// Statement and Preimage are the layers, fetched only with [WithContent].
	Statement, Preimage []byte
	// PreimageMediaType and PreimageDigest describe the preimage layer (with
	// [WithContent]); the bytes in Preimage were checked against that digest.
	PreimageMediaType, PreimageDigest string
	// Err is set when this referrer could not be read or failed a check (digest, size,
	// shape). Other entries are still returned.
	Err error
}

// Discovery is the result of [Client.Discover].
type Discovery struct {
	Repository string // registry/repository
	Digest     string // the subject digest (a tag was resolved once to this)
	Mode       Mode   // referrers API or tag schema
	Pages      int    // referrers pages read
	Entries    []Entry
}

// DiscoverOption configures [Client.Discover].
type DiscoverOption func(*discoverOptions) error

type discoverOptions struct {
	artifactType string
	content      bool
}

// WithArtifactType lists only referrers of type t; "" lists every referrer. Default:
// [ArtifactType] (Trustfabric's transparent statements).
func WithArtifactType(t string) DiscoverOption {
	return func(o *discoverOptions) error { o.artifactType = t; return nil }
}

// WithContent also fetches each referrer's manifest and its statement and preimage
// layers, concurrently, each at most once, checking sizes and digests. Default: the
// listing only (no manifest or blob fetched unless the listing lacks the artifact type).
func WithContent() DiscoverOption {
	return func(o *discoverOptions) error { o.content = true; return nil }
}

// Resolve returns the repository and manifest digest of ref (implements
// provenance.Resolver). A digest reference needs no registry call.
func (c *Client) Resolve(ctx context.Context, ref string) (repository, digest string, err error) {
	r, err := c.parseRef(ref)
	if err != nil {
		return "", "", err
	}
	if d, ok := r.(name.Digest); ok {
		return d.Context().String(), d.DigestStr(), nil
	}
	rc, err := c.repository(ctx, r.Context(), false)
	if err != nil {
		return "", "", err
	}
	f, found, err := rc.getManifest(ctx, r.Identifier())
	if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	if !found {
		return "", "", fmt.Errorf("%w: %s", ErrImageNotFound, ref)
	}
	return r.Context().String(), f.digest, nil
}

// Discover lists the referrers of the image ref (a tag is resolved to a digest once).
func (c *Client) Discover(ctx context.Context, ref string, opts ...DiscoverOption) (*Discovery, error) {
	o := discoverOptions{artifactType: ArtifactType}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	repo, dig, err := c.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	r, err := name.NewRepository(repo, c.nameOpts(repo)...)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadReference, repo, err)
	}
	rc, err := c.repository(ctx, r, false)
	if err != nil {
		return nil, err
	}
	out := &Discovery{Repository: repo, Digest: dig}
	listed, err := c.list(ctx, rc, dig, o.artifactType, out)
	if err != nil {
		return nil, err
	}
	// Client-side filter, always. Entries listed with no artifactType or with the empty
	// media type (registries that report config.mediaType) are classified by their manifest.
	var keep []Entry
	for _, d := range listed {
		e := Entry{Descriptor: d, Annotations: annotationsFrom(d.Annotations)}
		switch {
		case o.artifactType == "" || d.ArtifactType == o.artifactType:
		case d.ArtifactType == "" || d.ArtifactType == EmptyMediaType:
		default:
			continue
		}
		keep = append(keep, e)
	}
	c.fetchAll(ctx, rc, keep, o)
	for _, e := range keep {
		if o.artifactType != "" && e.Err == nil && e.Descriptor.ArtifactType != o.artifactType {
			continue // classified by its manifest as another type
		}
		out.Entries = append(out.Entries, e)
	}
	sort.SliceStable(out.Entries, func(i, j int) bool {
		a, b := out.Entries[i], out.Entries[j]
		if !a.Annotations.Created.Equal(b.Annotations.Created) {
			return a.Annotations.Created.Before(b.Annotations.Created)
		}
		return a.Descriptor.Digest < b.Descriptor.Digest
	})
	return out, nil
}

func (c *Client) nameOpts(repo string) []name.Option {
	host, _, _ := strings.Cut(repo, "/")
	if c.plainHTTP(host) {
		return []name.Option{name.Insecure}
	}
	return nil
}

// list returns the referrers of dig, deduplicated, through the API (all pages) or the
// tag schema.
func (c *Client) list(ctx context.Context, rc *repoClient, dig, artifactType string, out *Discovery) ([]Descriptor, error) {
	u, err := url.Parse(rc.url("/v2/%s/referrers/%s", rc.repo.RepositoryStr(), dig))
	if err != nil {
		return nil, err
	}
	q := u.Query()
	if artifactType != "" {
		q.Set("artifactType", artifactType)
	}
	if c.pageSize > 0 {
		q.Set("n", strconv.Itoa(c.pageSize))
	}
	u.RawQuery = q.Encode()

	seenURL := map[string]bool{}
	seen := map[string]bool{}
	var all []Descriptor
	for next := u; next != nil; {
		if seenURL[next.String()] {
			return nil, fmt.Errorf("%w: pagination loops back to %s", ErrMalformedIndex, next.Redacted())
		}
		seenURL[next.String()] = true
		if out.Pages >= c.maxPages {
			return nil, fmt.Errorf("%w: more than %d pages", ErrMalformedIndex, c.maxPages)
		}
		resp, err := rc.do(ctx, http.MethodGet, next.String(), http.Header{"Accept": {IndexMediaType}}, nil)
		if err != nil {
			return nil, err
		}
		if out.Pages == 0 && noReferrersAPI(resp.StatusCode) {
			drain(resp)
			c.setMode(rc, ModeTagSchema)
			out.Mode = ModeTagSchema
			ds, _, err := c.readTagIndex(ctx, rc, fallbackTag(dig))
			if err != nil {
				return nil, err
			}
			return dedupe(ds), nil
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("list referrers: %w", statusError(resp))
		}
		out.Mode = ModeReferrersAPI
		c.setMode(rc, ModeReferrersAPI)
		link := resp.Header.Get("Link")
		body, err := readLimited(resp, c.maxIndex, "referrers page")
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformedIndex, err)
		}
		out.Pages++
		ix, err := parseIndex(body, c.maxEntries)
		if err != nil {
			return nil, fmt.Errorf("referrers page %d: %w", out.Pages, err)
		}
		for _, d := range ix.Manifests {
			if !seen[d.Digest] {
				seen[d.Digest] = true
				all = append(all, d)
			}
		}
		if len(all) > c.maxEntries {
			return nil, fmt.Errorf("%w: more than %d referrers", ErrMalformedIndex, c.maxEntries)
		}
		if next, err = resolveLink(link, next); err != nil {
			return nil, err
		}
	}
	return all, nil
}

func dedupe(ds []Descriptor) []Descriptor {
	seen := map[string]bool{}
	var out []Descriptor
	for _, d := range ds {
		if !seen[d.Digest] {
			seen[d.Digest] = true
			out = append(out, d)
		}
	}
	return out
}

// fetchAll fetches, concurrently and at most once each, the manifests (and with content
// the layers) the entries need.
func (c *Client) fetchAll(ctx context.Context, rc *repoClient, es []Entry, o discoverOptions) {
	sem := make(chan struct{}, c.jobs)
	cache := NewBlobCache(0)
	var wg sync.WaitGroup
	for i := range es {
		e := &es[i]
		unclassified := e.Descriptor.ArtifactType == "" || e.Descriptor.ArtifactType == EmptyMediaType
		if !o.content && !(unclassified && o.artifactType != "") && len(e.Descriptor.Annotations) > 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			e.Err = c.fetchEntry(ctx, rc, e, o.content, cache)
		}()
	}
	wg.Wait()
}

// fetchEntry reads one referrer manifest and, with content, its two layers.
func (c *Client) fetchEntry(ctx context.Context, rc *repoClient, e *Entry, content bool, cache *BlobCache) error {
	f, found, err := rc.getManifest(ctx, e.Descriptor.Digest)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: referrer manifest %s is listed but missing", ErrImageNotFound, e.Descriptor.Digest)
	}
	if err := cache.charge(int64(len(f.body)), "referrer manifest "+e.Descriptor.Digest); err != nil {
		return err
	}
	m, err := parseManifest(f.body)
	if err != nil {
		return fmt.Errorf("referrer %s: %w", e.Descriptor.Digest, err)
	}
	at := m.ArtifactType
	if at == "" {
		at = m.Config.MediaType
	}
	e.Descriptor.ArtifactType = at
	if len(e.Descriptor.Annotations) == 0 {
		e.Descriptor.Annotations = m.Annotations
		e.Annotations = annotationsFrom(m.Annotations)
	}
	if !content || at != ArtifactType {
		return nil
	}
	if len(m.Layers) != 2 || m.Layers[0].MediaType != StatementMediaType {
		return fmt.Errorf("%w: referrer %s: want layers [statement, preimage]", ErrMalformed, e.Descriptor.Digest)
	}
	var (
		wg        sync.WaitGroup
		errs      [2]error
		stmt, pre []byte
	)
	for i, l := range m.Layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := cache.get(l, func() ([]byte, error) { return c.fetchBlob(ctx, rc, l) })
			if i == 0 {
				stmt = b
			} else {
				pre = b
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("referrer %s: %w", e.Descriptor.Digest, err)
		}
	}
	e.Statement, e.Preimage, e.PreimageMediaType, e.PreimageDigest = stmt, pre, m.Layers[1].MediaType, m.Layers[1].Digest
	return nil
}

// fetchBlob GETs a blob, refusing it when its descriptor exceeds the limit and checking
// the bytes received against the descriptor's size and digest.
func (c *Client) fetchBlob(ctx context.Context, rc *repoClient, d Descriptor) ([]byte, error) {
	if d.Size > c.maxBlob {
		return nil, fmt.Errorf("%w: layer %s is %d bytes, the limit is %d", ErrTooLarge, d.Digest, d.Size, c.maxBlob)
	}
	resp, err := rc.do(ctx, http.MethodGet, rc.url("/v2/%s/blobs/%s", rc.repo.RepositoryStr(), d.Digest), nil, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch layer %s: %w", d.Digest, statusError(resp))
	}
	b, err := readLimited(resp, d.Size, "layer "+d.Digest)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDigestMismatch, err)
	}
	if int64(len(b)) != d.Size || digestOf(b) != d.Digest {
		return nil, fmt.Errorf("%w: layer %s (got %d bytes, %s)", ErrDigestMismatch, d.Digest, len(b), digestOf(b))
	}
	return b, nil
}

// BlobCache fetches each blob at most once, even when several referrers share it and ask
// at the same time, and bounds the bytes fetched through it. One BlobCache passed to
// several [Client.FetchContent] calls (WithBlobCache) makes a whole verification fetch
// each blob once. It holds the blobs it fetched until it is dropped. Safe for concurrent
// use.
type BlobCache struct {
	mu       sync.Mutex
	m        map[string]*blobCall
	maxBytes int64 // 0: unbounded
	used     int64
}

// NewBlobCache returns a cache that refuses, with [ErrBudgetExceeded], to fetch more
// than maxBytes in all (manifests and blobs; 0 means no bound).
func NewBlobCache(maxBytes int64) *BlobCache {
	return &BlobCache{m: map[string]*blobCall{}, maxBytes: maxBytes}
}

// Used reports the bytes fetched (or reserved for fetching) through the cache.
func (c *BlobCache) Used() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// charge reserves n bytes of the budget.
func (c *BlobCache) charge(n int64, what string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxBytes > 0 && c.used+n > c.maxBytes {
		return fmt.Errorf("%w: %s needs %d bytes, %d of %d are used", ErrBudgetExceeded, what, n, c.used, c.maxBytes)
	}
	c.used += n
	return nil
}

type blobCall struct {
	once sync.Once
	b    []byte
	err  error
}

// get returns the blob of d, fetching it (and charging its size) only the first time.
func (c *BlobCache) get(d Descriptor, fetch func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	call, ok := c.m[d.Digest]
	if !ok {
		call = &blobCall{}
		c.m[d.Digest] = call
	}
	c.mu.Unlock()
	call.once.Do(func() {
		if call.err = c.charge(d.Size, "layer "+d.Digest); call.err == nil {
			call.b, call.err = fetch()
		}
	})
	return call.b, call.err
}
