// Package oci attaches SCITT transparent statements to OCI images as OCI 1.1 referrers and
// discovers them again, on registries with and without the referrers API.
//
// Specifications:
//   - OCI Image Spec v1.1 (manifest subject, artifactType, the empty descriptor):
//     https://github.com/opencontainers/image-spec/blob/v1.1.1/manifest.md
//   - OCI Distribution Spec v1.1 (referrers API, pagination, filtering, the referrers tag
//     schema): https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md
//
// # Wire format
//
// One image manifest per transparent statement (Trustfabric design §2.5): artifactType
// application/scitt-statement+cose, config = the OCI empty descriptor (byte-exact, with its
// inline data), layers = [transparent statement, preimage], subject = the image, and
// annotations org.opencontainers.image.created plus dev.trustfabric.* so that a referrers
// listing shows issuer, subject, transparency services, entry id, predicate type and
// payload content type without fetching any blob. The preimage layer's media type is the
// content type the statement declares (in-toto, a CycloneDX or SPDX SBOM, OpenVEX, plain
// text, …), and each layer carries org.opencontainers.image.title (statement.cose,
// preimage.<ext>) so that `oras pull` writes them as files.
//
// # Registries
//
// [Client.Attach] pushes the blobs, then the manifest by digest. A registry that indexes the
// subject answers with OCI-Subject (or has a working referrers endpoint) and nothing more is
// needed. Otherwise the client maintains the sha256-<hex> tag index: read, merge, write with
// If-Match, wait, re-read to confirm, retry — so concurrent writers lose nothing.
// [Client.Discover] lists referrers through the API (following Link pagination, asking for
// the artifactType filter and always filtering again locally), falls back to the tag index,
// and can fetch the statement and preimage layers with size limits and digest checks.
//
// Authentication uses go-containerregistry's default keychain (docker config, credential
// helpers) after GITHUB_TOKEN for ghcr.io and CI_REGISTRY_USER/CI_REGISTRY_PASSWORD for the
// GitLab registry; see [Keychain]. Plain HTTP is used only for localhost and for registries
// named with [WithInsecureRegistry]. [WithLayout] reads an OCI image layout on disk instead
// of any registry (a gate with no network).
package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Media types and digests of the referrer format.
const (
	ArtifactType          = "application/scitt-statement+cose"
	StatementMediaType    = "application/scitt-statement+cose"
	PreimageMediaType     = "application/vnd.in-toto+json"
	ManifestMediaType     = "application/vnd.oci.image.manifest.v1+json"
	IndexMediaType        = "application/vnd.oci.image.index.v1+json"
	DockerManifestType    = "application/vnd.docker.distribution.manifest.v2+json"
	DockerManifestList    = "application/vnd.docker.distribution.manifest.list.v2+json"
	EmptyMediaType        = "application/vnd.oci.empty.v1+json"
	EmptyDigest           = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
	emptyData             = "e30=" // base64 of "{}"
	annotationCreated     = "org.opencontainers.image.created"
	AnnotationIssuer      = "dev.trustfabric.issuer"
	AnnotationSubject     = "dev.trustfabric.subject"
	AnnotationTS          = "dev.trustfabric.ts"
	AnnotationEntryID     = "dev.trustfabric.entry-id"
	AnnotationPredicate   = "dev.trustfabric.predicate-type"
	AnnotationContentType = "dev.trustfabric.content-type"
	AnnotationTitle       = "org.opencontainers.image.title"
	StatementTitle        = "statement.cose"
	AnnotationCreated     = annotationCreated
	defaultMaxManifest    = 4 << 20
	defaultMaxIndex       = 4 << 20
	defaultMaxBlob        = 16 << 20
	defaultMaxEntries     = 10000
	defaultMaxPages       = 1000
	defaultJobs           = 8
	defaultMaxRetries     = 5
	defaultMaxRetryAfter  = 30 * time.Second
	defaultFallbackTries  = 20
	defaultFallbackSettle = 100 * time.Millisecond
)

// Errors callers can branch on with errors.Is.
var (
	ErrImageNotFound   = errors.New("image not found")
	ErrMalformedIndex  = errors.New("malformed referrers index")
	ErrMalformed       = errors.New("malformed manifest")
	ErrTooLarge        = errors.New("response larger than the limit")
	ErrDigestMismatch  = errors.New("content does not match its digest")
	ErrFallbackLost    = errors.New("referrers tag index kept losing our entry")
	ErrInsecureRefused = errors.New("plain HTTP refused")
	ErrBadReference    = errors.New("bad image reference")
	ErrBudgetExceeded  = errors.New("fetch budget exceeded")
)

// StatusError is a registry response the client did not expect.
type StatusError struct {
	Method, URL string
	Status      int
	Body        string // first bytes of the body, for the error message
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: registry answered %d %s", e.Method, e.URL, e.Status, e.Body)
}

// Mode is how a registry stores referrers.
type Mode string

// Referrer storage modes.
const (
	ModeReferrersAPI Mode = "referrers-api"
	ModeTagSchema    Mode = "tag-schema"
)

// Client talks to OCI registries. It is safe for concurrent use; it caches authenticated
// transports per repository and the referrers capability per repository.
type Client struct {
	keychain      authn.Keychain
	base          http.RoundTripper
	insecure      map[string]bool
	maxManifest   int64
	maxIndex      int64
	maxBlob       int64
	maxEntries    int
	maxPages      int
	jobs          int
	maxRetries    int
	maxRetryAfter time.Duration
	fallbackTries int
	settle        time.Duration
	pageSize      int
	sleep         func(ctx context.Context, d time.Duration) error

	mu         sync.Mutex
	transports map[string]http.RoundTripper
	caps       map[string]Mode
	tagLocks   map[string]*sync.Mutex
}

// Option configures a [Client].
type Option func(*Client) error

// WithKeychain sets the credentials source. Default: [Keychain](os.Getenv).
func WithKeychain(k authn.Keychain) Option {
	return func(c *Client) error { c.keychain = k; return nil }
}

// defaultTransport is http.DefaultTransport keeping enough idle connections per registry
// for the concurrent fetches of discovery (the default of 2 makes 8 jobs reconnect).
func defaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 4 * defaultJobs
	return t
}

// WithTransport sets the base HTTP transport. Default: http.DefaultTransport with 32 idle
// connections per host.
func WithTransport(t http.RoundTripper) Option {
	return func(c *Client) error { c.base = t; return nil }
}

// WithInsecureRegistry allows plain HTTP to host (host[:port]). Default: only localhost
// and loopback addresses may use plain HTTP.
func WithInsecureRegistry(host string) Option {
	return func(c *Client) error { c.insecure[host] = true; return nil }
}

// WithMaxManifestSize bounds the manifests read (images, referrers, tag indexes).
// Default 4 MiB, the size the distribution spec says clients should accept.
func WithMaxManifestSize(n int64) Option {
	return func(c *Client) error { c.maxManifest = n; return nil }
}

// WithMaxIndexSize bounds each referrers API page read. Default 4 MiB.
func WithMaxIndexSize(n int64) Option { return func(c *Client) error { c.maxIndex = n; return nil } }

// WithMaxBlobSize bounds the statement and preimage layers fetched. Default 16 MiB.
func WithMaxBlobSize(n int64) Option { return func(c *Client) error { c.maxBlob = n; return nil } }

// WithJobs bounds concurrent fetches during discovery. Default 8.
func WithJobs(n int) Option {
	return func(c *Client) error {
		if n < 1 {
			return fmt.Errorf("oci: jobs must be at least 1, got %d", n)
		}
		c.jobs = n
		return nil
	}
}

// WithPageSize asks the registry for at most n referrers per page (the "n" query
// parameter, which registries may ignore). Default: the registry's choice.
func WithPageSize(n int) Option { return func(c *Client) error { c.pageSize = n; return nil } }

// WithMaxRetryAfter caps how long the client honours a Retry-After header. Default 30 s.
func WithMaxRetryAfter(d time.Duration) Option {
	return func(c *Client) error { c.maxRetryAfter = d; return nil }
}

// WithFallbackSettle sets how long a tag-schema writer waits before re-reading the index
// to confirm its entry survived concurrent writers. Default 100 ms.
func WithFallbackSettle(d time.Duration) Option {
	return func(c *Client) error { c.settle = d; return nil }
}

// New returns a Client.
func New(opts ...Option) (*Client, error) {
	c := &Client{
		base:          defaultTransport(),
		insecure:      map[string]bool{},
		maxManifest:   defaultMaxManifest,
		maxIndex:      defaultMaxIndex,
		maxBlob:       defaultMaxBlob,
		maxEntries:    defaultMaxEntries,
		maxPages:      defaultMaxPages,
		jobs:          defaultJobs,
		maxRetries:    defaultMaxRetries,
		maxRetryAfter: defaultMaxRetryAfter,
		fallbackTries: defaultFallbackTries,
		settle:        defaultFallbackSettle,
		sleep:         sleepCtx,
		transports:    map[string]http.RoundTripper{},
		caps:          map[string]Mode{},
		tagLocks:      map[string]*sync.Mutex{},
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.keychain == nil {
		c.keychain = Keychain(nil)
	}
	return c, nil
}
