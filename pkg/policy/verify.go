package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// ciClaim is the WIT claim carrying the CI facts (pkg/identity.CIClaim).
const ciClaim = "https://trustfabric.dev/ci"

// Check names, in the order the chain runs them.
const (
	CheckReferrer   = "referrer"
	CheckStatement  = "statement"
	CheckSubject    = "subject"
	CheckReceipts   = "receipts"
	CheckWitnesses  = "witnesses"
	CheckSignature  = "signature"
	CheckPreimage   = "preimage"
	CheckPayload    = "payload"
	CheckIdentity   = "identity"
	CheckProvenance = "provenance"
)

// Decision is the gate's verdict on one image.
type Decision struct {
	Allowed bool   `json:"allowed"`
	Image   string `json:"image"`
	Digest  string `json:"digest"`
	// Policy is the hex SHA-256 of the policy document.
	Policy string `json:"policy"`
	// SatisfiedBy is the first candidate that met a requirement (when
	// allowed); Requirements say which candidate met each.
	SatisfiedBy  *Candidate    `json:"satisfiedBy,omitempty"`
	Requirements []Requirement `json:"requirements"`
	// Candidates are every referrer considered, allowed or not.
	Candidates []Candidate `json:"candidates"`
	// Reasons say, one line per rejected candidate, why (when denied).
	Reasons []string `json:"reasons,omitempty"`
	// Cached reports whether the decision came from the cache.
	Cached bool `json:"cached"`
}

// Requirement is one payload rule the image must meet, and the referrer
// whose statement met it ("" when none did).
type Requirement struct {
	Name        string `json:"name"`
	SatisfiedBy string `json:"satisfiedBy,omitempty"`
}

// Candidate is one referrer and the checks it went through. The chain stops
// at the first failed check.
type Candidate struct {
	Referrer     string    `json:"referrer"`
	Issuer       string    `json:"issuer,omitempty"`
	Subject      string    `json:"subject,omitempty"`
	EntryID      string    `json:"entryID,omitempty"`
	Services     []string  `json:"transparencyServices,omitempty"`
	RegisteredAt time.Time `json:"registeredAt,omitzero"`
	// Payload is the in-toto predicate type, or the content type of another
	// payload; Satisfies the payload rules it matches.
	Payload   string   `json:"payload,omitempty"`
	Satisfies []string `json:"satisfies,omitempty"`
	OK        bool     `json:"ok"`
	Checks    []Check  `json:"checks"`
	// Facts are what the candidate's checks established (set on a
	// candidate that passed every check): the input of a credential
	// (pkg/credential).
	Facts *Facts `json:"facts,omitempty"`
}

// Check is one step of the chain.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
	err    error
}

// Err returns the error of a failed check (nil when it passed).
func (c Check) Err() error { return c.err }

func (c *Candidate) pass(name, detail string) {
	c.Checks = append(c.Checks, Check{Name: name, OK: true, Reason: detail})
}

func (c *Candidate) fail(name string, err error) {
	c.Checks = append(c.Checks, Check{Name: name, Reason: err.Error(), err: err})
}

// Failed returns the failed check of a rejected candidate.
func (c *Candidate) Failed() (Check, bool) {
	for _, ch := range c.Checks {
		if !ch.OK {
			return ch, true
		}
	}
	return Check{}, false
}

// Errors the checks wrap, for callers that branch on the cause.
var (
	ErrNoEvidence       = errors.New("no SCITT statement is attached to the image")
	ErrWrongSubject     = errors.New("statement is about another artifact")
	ErrNoTrustedReceipt = errors.New("not registered with a trusted transparency service")
	ErrUntrustedIssuer  = errors.New("issuer is not trusted")
	ErrNotAllowed       = errors.New("workload identity is not allowed")
	ErrProvenance       = errors.New("provenance does not satisfy the policy")
	ErrReceiptTooOld    = errors.New("receipt is older than the policy allows")
	ErrBadReceipt       = errors.New("a receipt of a trusted service does not verify")
	// ErrWitnesses: a receipt's checkpoint is not cosigned by enough trusted
	// witnesses (missing, forged or untrusted cosignatures, or a checkpoint
	// of another tree: a forked log). Also wraps scitt.ErrWitness.
	ErrWitnesses = errors.New("witness check failed")
	ErrPayload   = errors.New("payload is not acceptable")
	// ErrBudget: the verification needed more time or bytes than its budget
	// (WithBudget); Verify returns it as an error, never as an allow.
	ErrBudget = errors.New("verification exceeded its budget")
)

// Default budget of one verification (WithBudget).
const (
	DefaultTimeout  = 30 * time.Second
	DefaultMaxBytes = 64 << 20
)

// fetchGroup is how many referrers' layers the verifier fetches at once.
const fetchGroup = 4

type service struct {
	name, issuer string
	keys         keys.Set
	leaf         scitt.LeafConvention
	witnesses    *scitt.Witnesses
}

type staticIssuer struct {
	issuer string
	keys   keys.Set
}

// Verifier applies one policy. It is safe for concurrent use: decisions are
// cached per image digest (allow for CacheTTL, deny briefly), and concurrent
// verifications of one digest share one run.
type Verifier struct {
	p        *Policy
	oci      *oci.Client
	now      func() time.Time
	services []service
	bundles  wimse.Bundles
	issuers  []staticIssuer
	allowTTL time.Duration
	denyTTL  time.Duration
	timeout  time.Duration
	maxBytes int64

	mu       sync.Mutex
	cache    map[string]cached
	inflight map[string]*flight
}

type cached struct {
	d       *Decision
	expires time.Time
}

type flight struct {
	done chan struct{}
	d    *Decision
	err  error
}

type options struct {
	oci      *oci.Client
	offline  bool
	hc       *http.Client
	now      func() time.Time
	allowTTL time.Duration
	denyTTL  time.Duration
	timeout  time.Duration
	maxBytes int64
}

// Option configures a Verifier.
type Option func(*options) error

// WithOCIClient sets the registry client. Default: oci.New().
func WithOCIClient(c *oci.Client) Option { return func(o *options) error { o.oci = c; return nil } }

// WithOffline uses only pinned keys and bundle files; a policy that needs a
// URL is an error. Default: URLs in the policy are fetched once.
func WithOffline() Option { return func(o *options) error { o.offline = true; return nil } }

// WithHTTPClient is used to fetch key sets and bundles. Default:
// http.DefaultClient with a 10 s timeout.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) error { o.hc = hc; return nil } }

// WithClock sets the clock for receipt ages and cache expiry. Default:
// time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error { o.now = now; return nil }
}

// WithCacheTTL sets how long allow and deny decisions are cached. Default:
// 5 minutes and 10 seconds; zero disables that cache.
func WithCacheTTL(allow, deny time.Duration) Option {
	return func(o *options) error { o.allowTTL, o.denyTTL = allow, deny; return nil }
}

// WithBudget bounds one verification: its duration (listing, fetching and
// checking) and the bytes of referrer manifests and layers it fetches (each
// blob is fetched once per verification, however many referrers share it).
// Beyond either, Verify fails with ErrBudget. Default DefaultTimeout (30 s)
// and DefaultMaxBytes (64 MiB); zero leaves that one unbounded.
func WithBudget(timeout time.Duration, maxBytes int64) Option {
	return func(o *options) error {
		if timeout < 0 || maxBytes < 0 {
			return errors.New("policy: the verification budget must not be negative")
		}
		o.timeout, o.maxBytes = timeout, maxBytes
		return nil
	}
}

// NewVerifier loads the keys and bundles the policy names.
func NewVerifier(ctx context.Context, p *Policy, opts ...Option) (*Verifier, error) {
	o := options{now: time.Now, allowTTL: 5 * time.Minute, denyTTL: 10 * time.Second, hc: &http.Client{Timeout: 10 * time.Second},
		timeout: DefaultTimeout, maxBytes: DefaultMaxBytes}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if p.CredentialOnly() {
		return nil, ErrCredentialOnly
	}
	if o.oci == nil {
		c, err := oci.New()
		if err != nil {
			return nil, err
		}
		o.oci = c
	}
	v := &Verifier{p: p, oci: o.oci, now: o.now, allowTTL: o.allowTTL, denyTTL: o.denyTTL, timeout: o.timeout, maxBytes: o.maxBytes,
		cache: map[string]cached{}, inflight: map[string]*flight{}}
	for i, ts := range p.TransparencyServices {
		keys, err := p.loadKeys(ts.Keys, ts.InlineKeys)
		if err != nil {
			return nil, fmt.Errorf("transparencyServices[%d]: %w", i, err)
		}
		if ts.URL != "" && len(ts.Kids) > 0 {
			if o.offline {
				if len(keys) == 0 {
					return nil, fmt.Errorf("transparencyServices[%d]: --offline needs pinned keys, not url %s", i, ts.URL)
				}
			} else {
				fetched, err := fetchPinned(ctx, ts.URL, ts.Kids)
				if err != nil {
					return nil, fmt.Errorf("transparencyServices[%d]: %w", i, err)
				}
				keys = append(keys, fetched...)
			}
		}
		leaf, _ := scitt.ParseLeafConvention(ts.Leaf)
		name := ts.Name
		if name == "" {
			name = ts.Issuer
		}
		if name == "" {
			name = fmt.Sprintf("transparencyServices[%d]", i)
		}
		svc := service{name: name, issuer: ts.Issuer, keys: keys, leaf: leaf}
		if w := ts.Witnesses; w != nil {
			svc.witnesses = &scitt.Witnesses{Threshold: w.Threshold}
			for _, k := range w.Keys {
				wv, err := scitt.ParseWitnessKey(k)
				if err != nil {
					return nil, fmt.Errorf("transparencyServices[%d].witnesses: %w", i, err)
				}
				svc.witnesses.Keys = append(svc.witnesses.Keys, wv)
			}
		}
		v.services = append(v.services, svc)
	}
	for i, d := range p.Identities {
		var data []byte
		var err error
		if d.Bundle != "" {
			data, err = readLimited(p.path(d.Bundle))
		} else if o.offline {
			return nil, fmt.Errorf("identities[%d]: --offline needs a bundle file, not bundleURL %s", i, d.BundleURL)
		} else {
			data, err = fetch(ctx, o.hc, d.BundleURL)
		}
		if err != nil {
			return nil, fmt.Errorf("identities[%d]: %w", i, err)
		}
		b, err := wimse.ParseBundle(d.TrustDomain, data)
		if err != nil {
			return nil, fmt.Errorf("identities[%d]: %w", i, err)
		}
		v.bundles = append(v.bundles, b)
	}
	for i, is := range p.Issuers {
		keys, err := p.loadKeys(is.Keys, is.InlineKeys)
		if err != nil {
			return nil, fmt.Errorf("issuers[%d]: %w", i, err)
		}
		v.issuers = append(v.issuers, staticIssuer{issuer: is.Issuer, keys: keys})
	}
	return v, nil
}

func fetchPinned(ctx context.Context, url string, kids []string) (keys.Set, error) {
	all, err := scrapi.FetchKeys(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("fetch keys from %s: %w", url, err)
	}
	var out keys.Set
	for _, kid := range kids {
		raw, err := hex.DecodeString(kid)
		if err != nil {
			raw = []byte(kid)
		}
		found := false
		for _, k := range all {
			if (keys.Set{k}).Names(raw) && len(raw) > 0 {
				out, found = append(out, k), true
			}
		}
		if !found {
			return nil, fmt.Errorf("%s publishes no key with the pinned kid %s", url, kid)
		}
	}
	return out, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, wimse.MaxBundleSize))
}

func fetch(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: HTTP %d", url, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, wimse.MaxBundleSize))
}

// Verify decides whether the image ref (a digest reference, or a tag that
// is resolved once) may be deployed. The error is for failures to decide
// (registry unreachable, image missing); a deny is a Decision.
func (v *Verifier) Verify(ctx context.Context, ref string) (*Decision, error) {
	repo, digest, err := v.oci.Resolve(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	// Under request credentials (oci.WithRequestKeychain: the admission
	// webhook's pull secrets) a decision serves only requests with the same
	// credentials: one read with a pod's secret is not an allow for a pod
	// that could not read the image.
	cred, err := v.oci.CredentialID(ctx, repo+"@"+digest)
	if err != nil {
		return nil, err
	}
	key := digest + "|" + hex.EncodeToString(v.p.digest[:]) + "|" + repo + "|" + cred
	v.mu.Lock()
	if c, ok := v.cache[key]; ok && v.now().Before(c.expires) {
		v.mu.Unlock()
		d := *c.d
		d.Cached = true
		return &d, nil
	}
	if f, ok := v.inflight[key]; ok {
		v.mu.Unlock()
		select {
		case <-f.done:
			return f.d, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	v.inflight[key] = f
	v.mu.Unlock()

	f.d, f.err = v.decide(ctx, repo, digest)
	v.mu.Lock()
	delete(v.inflight, key)
	if f.err == nil {
		ttl := v.denyTTL
		if f.d.Allowed {
			ttl = v.allowTTL
		}
		if ttl > 0 {
			v.cache[key] = cached{d: f.d, expires: v.now().Add(ttl)}
		}
	}
	v.mu.Unlock()
	close(f.done)
	return f.d, f.err
}

func (v *Verifier) decide(ctx context.Context, repo, digest string) (*Decision, error) {
	if v.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.timeout)
		defer cancel()
	}
	d, err := v.decideWithin(ctx, repo, digest)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil && v.timeout > 0 {
		return nil, fmt.Errorf("%w: %s@%s took longer than %s (set with WithBudget, or verify --timeout)", ErrBudget, repo, digest, v.timeout)
	}
	return d, err
}

func (v *Verifier) decideWithin(ctx context.Context, repo, digest string) (*Decision, error) {
	// The listing carries everything but the layers; they are fetched a few
	// referrers at a time (concurrently within a group) through one cache,
	// so that a blob shared by many referrers is fetched once, and the
	// bytes fetched stay within the budget (design §7, docs/design/gate.md).
	disc, err := v.oci.Discover(ctx, repo+"@"+digest, oci.WithArtifactType(scitt.MediaTypeStatement))
	if err != nil {
		return nil, fmt.Errorf("discover referrers of %s@%s: %w", repo, digest, err)
	}
	cache := oci.NewBlobCache(v.maxBytes)
	fetch := func(group []oci.Entry) error {
		if err := v.oci.FetchContent(ctx, disc.Repository, group, oci.WithBlobCache(cache)); err != nil {
			return fmt.Errorf("fetch referrers of %s@%s: %w", repo, digest, err)
		}
		return nil
	}
	return v.judge(ctx, repo+"@"+digest, digest, disc.Entries, fetch)
}

// Evidence is a transparent statement and its preimage kept outside a
// registry, e.g. next to a released file.
type Evidence struct {
	// Source names where it was read from (a file path); it stands for the
	// referrer digest in the decision.
	Source              string
	Statement, Preimage []byte
}

// VerifyEvidence decides on an artifact known by its digest
// ("sha256:<hex>", e.g. of a file) from evidence given directly instead of
// discovered in a registry, with the same checks as Verify. name is what the
// decision calls the artifact (a file path).
func (v *Verifier) VerifyEvidence(ctx context.Context, name, digest string, evidence []Evidence) (*Decision, error) {
	if !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
		return nil, fmt.Errorf("digest %q is not sha256:<64 hex>", digest)
	}
	entries := make([]oci.Entry, len(evidence))
	for i, e := range evidence {
		sum := sha256.Sum256(e.Preimage)
		entries[i] = oci.Entry{Descriptor: oci.Descriptor{Digest: e.Source}, Statement: e.Statement, Preimage: e.Preimage,
			PreimageDigest: "sha256:" + hex.EncodeToString(sum[:])}
	}
	if v.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.timeout)
		defer cancel()
	}
	return v.judge(ctx, name, digest, entries, func([]oci.Entry) error { return nil })
}

// judge evaluates candidates, fetching their content a group at a time with
// fetch, until every requirement of the policy is met by one that passes
// every check, and builds the decision.
func (v *Verifier) judge(ctx context.Context, name, digest string, entries []oci.Entry, fetch func([]oci.Entry) error) (*Decision, error) {
	d := &Decision{Image: name, Digest: digest, Policy: hex.EncodeToString(v.p.digest[:])}
	for _, r := range v.p.Payloads.Require {
		d.Requirements = append(d.Requirements, Requirement{Name: r.String()})
	}
	unmet := len(d.Requirements)
	satisfiedBy := -1
	memo := payloadMemo{}
	// Candidates are evaluated in listing order until every requirement is
	// met by one that passes every check. Each candidate is judged on its
	// own, so the verdict does not depend on the order (only which
	// candidates are reported does); a deny evaluates and reports every
	// candidate.
	for start := 0; start < len(entries) && unmet > 0; start += fetchGroup {
		group := entries[start:min(start+fetchGroup, len(entries))]
		if err := fetch(group); err != nil {
			return nil, err
		}
		for i := range group {
			if err := group[i].Err; errors.Is(err, oci.ErrBudgetExceeded) {
				return nil, fmt.Errorf("%w: %w (set with WithBudget, or verify --max-bytes)", ErrBudget, err)
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			c := v.evaluate(&group[i], digest, memo)
			group[i].Statement, group[i].Preimage = nil, nil
			d.Candidates = append(d.Candidates, c)
			if !c.OK {
				continue
			}
			for j := range d.Requirements {
				if d.Requirements[j].SatisfiedBy == "" && slices.Contains(c.Satisfies, d.Requirements[j].Name) {
					d.Requirements[j].SatisfiedBy = c.Referrer
					unmet--
					if satisfiedBy < 0 {
						satisfiedBy = len(d.Candidates) - 1
					}
				}
			}
			if unmet == 0 {
				break
			}
		}
	}
	d.Allowed = unmet == 0
	if d.Allowed && satisfiedBy >= 0 {
		d.SatisfiedBy = &d.Candidates[satisfiedBy]
	}
	if !d.Allowed {
		if len(d.Candidates) == 0 {
			d.Reasons = []string{fmt.Sprintf("%s: %v", d.Image, ErrNoEvidence)}
		} else {
			for _, r := range d.Requirements {
				if r.SatisfiedBy == "" {
					d.Reasons = append(d.Reasons, fmt.Sprintf("requirement %s: no attached statement of that kind passes every check", r.Name))
				}
			}
		}
		for _, c := range d.Candidates {
			if ch, ok := c.Failed(); ok {
				d.Reasons = append(d.Reasons, fmt.Sprintf("referrer %s: %s: %s", short(c.Referrer), ch.Name, ch.Reason))
			}
		}
	}
	return d, nil
}

func short(digest string) string {
	if i := strings.IndexByte(digest, ':'); i >= 0 && len(digest) > i+13 {
		return digest[:i+13]
	}
	return digest
}

// JSON renders the decision as indented JSON (the `verify --output json` format).
func (d *Decision) JSON() ([]byte, error) { return json.MarshalIndent(d, "", "  ") }
