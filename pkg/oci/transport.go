package oci

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// repoClient is an authenticated view of one repository.
type repoClient struct {
	c    *Client
	repo name.Repository
	rt   http.RoundTripper
	base string // scheme://host
}

// isLoopback reports whether host (host[:port]) is localhost or a loopback address.
func isLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// plainHTTP reports whether host may be reached over plain HTTP.
func (c *Client) plainHTTP(host string) bool { return c.insecure[host] || isLoopback(host) }

// parseRef parses an image reference with the client's insecure-registry rules.
func (c *Client) parseRef(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		// Accept short names (docker.io defaults) as users type them.
		if r, err = name.ParseReference(ref); err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrBadReference, ref, err)
		}
	}
	if c.plainHTTP(r.Context().RegistryStr()) {
		if r, err = name.ParseReference(ref, name.Insecure); err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrBadReference, ref, err)
		}
	}
	return r, nil
}

// httpsOnly refuses plain-HTTP requests to hosts not allowed to use them. ggcr would
// otherwise fall back to HTTP for private (RFC 1918) addresses.
type httpsOnly struct {
	c     *Client
	inner http.RoundTripper
}

func (h httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !h.c.plainHTTP(r.URL.Host) {
		return nil, fmt.Errorf("%w to %s: pass --insecure-registry %s to allow it", ErrInsecureRefused, r.URL.Host, r.URL.Host)
	}
	return h.inner.RoundTrip(r)
}

// maxTransports bounds the cache of authenticated transports.
const maxTransports = 4096

// repository returns an authenticated client for repo with pull (and push) scope.
func (c *Client) repository(ctx context.Context, repo name.Repository, push bool) (*repoClient, error) {
	key := repo.String()
	scopes := []string{repo.Scope(transport.PullScope)}
	if push {
		key += "#push"
		scopes = []string{repo.Scope(transport.PushScope)}
	}
	scheme := "https"
	if c.plainHTTP(repo.RegistryStr()) {
		scheme = "http"
	}
	rc := &repoClient{c: c, repo: repo, base: scheme + "://" + repo.RegistryStr()}
	// Under a request keychain the credentials are resolved first and the
	// transport is cached per credentials: two pods' pull secrets never
	// share an authenticated transport.
	var auth authn.Authenticator
	if kc, ok := requestKeychain(ctx); ok {
		var err error
		if auth, err = authn.Resolve(ctx, authn.NewMultiKeychain(kc, c.keychain), repo); err != nil {
			return nil, fmt.Errorf("registry credentials for %s: %w", repo.RegistryStr(), err)
		}
		fp, err := credentialFingerprint(auth)
		if err != nil {
			return nil, fmt.Errorf("registry credentials for %s: %w", repo.RegistryStr(), err)
		}
		key += "#cred=" + fp
	}
	c.mu.Lock()
	rt, ok := c.transports[key]
	c.mu.Unlock()
	if ok {
		rc.rt = rt
		return rc, nil
	}
	if auth == nil {
		var err error
		if auth, err = authn.Resolve(ctx, c.keychain, repo); err != nil {
			return nil, fmt.Errorf("registry credentials for %s: %w", repo.RegistryStr(), err)
		}
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, httpsOnly{c: c, inner: c.base}, scopes)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", repo.RegistryStr(), err)
	}
	c.mu.Lock()
	if len(c.transports) >= maxTransports {
		clear(c.transports) // per-credentials keys are unbounded in a webhook: start over
	}
	c.transports[key] = rt
	c.mu.Unlock()
	rc.rt = rt
	return rc, nil
}

// url returns the absolute URL of a registry API path ("/v2/<repo>/...").
func (r *repoClient) url(format string, args ...any) string {
	return r.base + fmt.Sprintf(format, args...)
}

// do sends a request, retrying on 429 and 502-504 with the server's Retry-After (capped)
// or an exponential backoff. body may be nil; it is replayed on retries.
func (r *repoClient) do(ctx context.Context, method, u string, hdr http.Header, body []byte) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, u, err)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		if body != nil {
			req.ContentLength = int64(len(body))
		}
		resp, err := (&http.Client{Transport: r.rt, CheckRedirect: sameHostRedirect}).Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, u, err)
		}
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		default:
			return resp, nil
		}
		if attempt >= r.c.maxRetries {
			return resp, nil
		}
		wait := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		if wait < 0 {
			wait = time.Duration(100<<attempt)*time.Millisecond + time.Duration(rand.Int64N(int64(50*time.Millisecond)))
		}
		if wait > r.c.maxRetryAfter {
			wait = r.c.maxRetryAfter
		}
		drain(resp)
		if err := r.c.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// sameHostRedirect follows redirects (blob storage on another host is common) but never
// more than 10.
func sameHostRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return fmt.Errorf("stopped after %d redirects", len(via))
	}
	return nil
}

// retryAfter parses a Retry-After header (delta-seconds or HTTP-date, RFC 9110 §10.2.3);
// it returns -1 when absent or unparsable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return -1
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
		return 0
	}
	return -1
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// drain discards and closes a response body so the connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// readLimited reads at most limit bytes of resp's body and closes it.
func readLimited(resp *http.Response, limit int64, what string) ([]byte, error) {
	defer resp.Body.Close()
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrTooLarge, what, resp.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s exceeds %d bytes", ErrTooLarge, what, limit)
	}
	return b, nil
}

// statusError builds a StatusError from an unexpected response and closes it.
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	return &StatusError{Method: resp.Request.Method, URL: resp.Request.URL.Redacted(), Status: resp.StatusCode,
		Body: strings.TrimSpace(string(b))}
}

// resolveLink resolves the target of a rel="next" Link header against the request URL.
// It refuses a next page on another host or scheme (credentials would follow it).
func resolveLink(header string, base *url.URL) (*url.URL, error) {
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		lt, gt := strings.Index(part, "<"), strings.Index(part, ">")
		if lt != 0 || gt < 0 {
			continue
		}
		params := strings.ToLower(part[gt+1:])
		if !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) && !strings.Contains(params, "rel=next") {
			continue
		}
		u, err := base.Parse(part[1:gt])
		if err != nil {
			return nil, fmt.Errorf("%w: Link header %q: %w", ErrMalformedIndex, header, err)
		}
		if u.Host != base.Host || u.Scheme != base.Scheme {
			return nil, fmt.Errorf("%w: Link header points to another registry (%s)", ErrMalformedIndex, u.Host)
		}
		return u, nil
	}
	return nil, nil
}
