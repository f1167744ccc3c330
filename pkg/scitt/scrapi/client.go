// Package scrapi is the client side of the SCITT Reference APIs
// (draft-ietf-scitt-scrapi-09 §2) and the wire types shared with the
// Transparency Service in pkg/transparency: register a Signed Statement and
// obtain its receipt, resolve receipts and statements, and fetch the
// service's key set (COSE_KeySet at /.well-known/scitt-keys).
//
// # Registration flows
//
// The client follows every flow SCRAPI allows: 201 with the receipt; 303 to
// an operation or entry URL, then 302 (pending, honouring Retry-After) until
// 200 with the receipt; and older servers' 202 with an operation body
// ({operationId, status, entryId}, CBOR or JSON). Errors are RFC 9290
// concise problem details, returned as *[Problem]. 5xx and 429 answers are
// retried with Retry-After or exponential backoff with jitter; every wait
// ends with ctx.
package scrapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// Limits on what the client reads from a server.
const (
	MaxReceiptSize = 1 << 20
	MaxKeySetSize  = 1 << 20
	maxBodySize    = 8 << 20
)

// ErrProtocol is wrapped when the server's answer does not follow SCRAPI.
var ErrProtocol = errors.New("unexpected transparency service response")

// Client talks to one Transparency Service.
type Client struct {
	base     *url.URL
	hc       *http.Client
	minWait  time.Duration
	maxWait  time.Duration
	attempts int
	async    bool

	keysMu   sync.Mutex
	keys     keys.Set
	keysTime time.Time
	keysTTL  time.Duration
}

// Option configures a Client.
type Option func(*Client) error

// WithHTTPClient sets the HTTP client (default: a client with a 60 s
// timeout). Redirects are always handled by this package, never followed
// automatically.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error { c.hc = hc; return nil }
}

// WithBackoff sets the first and the largest wait between polls or retries
// when the server sends no Retry-After (defaults 100 ms and 5 s).
func WithBackoff(first, max time.Duration) Option {
	return func(c *Client) error {
		if first <= 0 || max < first {
			return errors.New("backoff: need 0 < first ≤ max")
		}
		c.minWait, c.maxWait = first, max
		return nil
	}
}

// WithRetries sets how many times a 5xx/429 answer or a transport error is
// retried (default 5).
func WithRetries(n int) Option {
	return func(c *Client) error { c.attempts = n + 1; return nil }
}

// WithRespondAsync asks the server (RFC 7240 Prefer: respond-async) to answer
// a registration with 303 as soon as the entry is durably sequenced; the
// client then fetches the receipt from the Location. Default off.
func WithRespondAsync() Option {
	return func(c *Client) error { c.async = true; return nil }
}

// WithKeysTTL sets how long a fetched key set is reused (default 5 min).
func WithKeysTTL(d time.Duration) Option {
	return func(c *Client) error { c.keysTTL = d; return nil }
}

// NewClient returns a client for the service at baseURL (scheme and host,
// optionally a path prefix).
func NewClient(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("transparency service URL %q: want http(s)://host[:port]", baseURL)
	}
	c := &Client{base: u, hc: &http.Client{Timeout: 60 * time.Second}, minWait: 100 * time.Millisecond,
		maxWait: 5 * time.Second, attempts: 6, keysTTL: 5 * time.Minute}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	return c, nil
}

// Registration is the result of [Client.Register].
type Registration struct {
	// Receipt is the encoded COSE Receipt.
	Receipt []byte
	// EntryID is the entry id, when the server told it (Location).
	EntryID string
	// Location is the URL the receipt can be fetched from again.
	Location string
}

// Register submits a Signed Statement and waits for its receipt.
func (c *Client) Register(ctx context.Context, statement []byte) (*Registration, error) {
	loc, reg, err := c.Submit(ctx, statement)
	if err != nil || reg != nil {
		return reg, err
	}
	return c.Await(ctx, loc)
}

// Submit posts a Signed Statement once (retrying only transient failures).
// It returns the registration when the server answered 201, or else the URL
// to poll with [Client.Await].
func (c *Client) Submit(ctx context.Context, statement []byte) (string, *Registration, error) {
	resp, body, err := c.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+"/entries", bytes.NewReader(statement))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", MediaTypeCOSE)
		req.Header.Set("Accept", MediaTypeCOSE+", "+MediaTypeCBOR+", "+MediaTypeProblemDetails)
		if c.async {
			req.Header.Set("Prefer", "respond-async")
		}
		return req, nil
	}, MaxReceiptSize)
	if err != nil {
		return "", nil, fmt.Errorf("register statement: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusAccepted && len(body) > 0:
		op, err := parseOperation(body)
		if err != nil {
			return "", nil, fmt.Errorf("register statement: %w", err)
		}
		return c.base.String() + "/operations/" + url.PathEscape(op.OperationID), nil, nil
	case resp.StatusCode/100 == 2 && len(body) > 0:
		// 201 (SCRAPI) or 200; any other 2xx with a body is read by its
		// class (SCRAPI §2: unknown codes fall back to class semantics).
		loc, _ := c.resolve(resp.Header.Get("Location"))
		return "", &Registration{Receipt: body, Location: loc, EntryID: entryIDFrom(loc)}, nil
	case resp.StatusCode/100 == 3, resp.StatusCode == http.StatusAccepted:
		// 303 (SCRAPI), 302, 307/308, or a 202 without an operation body:
		// the receipt is to be fetched from the Location.
		loc, err := c.resolve(resp.Header.Get("Location"))
		if err != nil {
			return "", nil, fmt.Errorf("register statement: status %d: %w", resp.StatusCode, err)
		}
		return loc, nil, nil
	}
	return "", nil, fmt.Errorf("register statement: %w: status %d without a receipt or a Location", ErrProtocol, resp.StatusCode)
}

// Await polls a registration's URL (from [Client.Submit]) until the receipt
// is available.
func (c *Client) Await(ctx context.Context, loc string) (*Registration, error) {
	wait := c.minWait
	for {
		resp, body, err := c.do(ctx, func() (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
			if err == nil {
				req.Header.Set("Accept", MediaTypeCOSE+", "+MediaTypeCBOR+", "+MediaTypeProblemDetails)
			}
			return req, err
		}, MaxReceiptSize)
		if err != nil {
			return nil, fmt.Errorf("fetch receipt: %w", err)
		}
		switch {
		case resp.StatusCode == http.StatusOK && isOperationBody(resp):
			op, err := parseOperation(body)
			if err != nil {
				return nil, fmt.Errorf("fetch receipt: %w", err)
			}
			switch strings.ToLower(op.Status) {
			case "succeeded":
				loc = c.base.String() + "/entries/" + url.PathEscape(op.EntryID)
				continue
			case "failed":
				return nil, fmt.Errorf("fetch receipt: %w", &Problem{Title: "Registration Failed", Detail: op.Error, Status: http.StatusOK})
			}
			// running: poll again
		case resp.StatusCode/100 == 2 && resp.StatusCode != http.StatusAccepted && len(body) > 0:
			// 200 with the receipt (or another 2xx with a body, by class).
			final := loc
			if l, err := c.resolve(resp.Header.Get("Location")); err == nil && l != "" {
				final = l
			}
			return &Registration{Receipt: body, Location: final, EntryID: entryIDFrom(final)}, nil
		case resp.StatusCode/100 == 3, resp.StatusCode == http.StatusAccepted:
			// Still running: 302 (SCRAPI -09/-10), 202 (the change the IESG
			// asked for in -11), or any other 3xx; follow the Location.
			if l, err := c.resolve(resp.Header.Get("Location")); err == nil && l != "" {
				loc = l
			}
		default:
			return nil, fmt.Errorf("fetch receipt: %w: status %d without a receipt", ErrProtocol, resp.StatusCode)
		}
		d, ok := retryAfter(resp)
		if !ok {
			d = jitter(wait)
			wait = min(2*wait, c.maxWait)
		}
		if err := sleep(ctx, d); err != nil {
			return nil, fmt.Errorf("fetch receipt: %w", err)
		}
	}
}

// Receipt fetches the receipt of an entry id, waiting while it is pending.
func (c *Client) Receipt(ctx context.Context, entryID string) ([]byte, error) {
	reg, err := c.Await(ctx, c.base.String()+"/entries/"+url.PathEscape(entryID))
	if err != nil {
		return nil, err
	}
	return reg.Receipt, nil
}

// Statement fetches the registered statement of an entry id.
func (c *Client) Statement(ctx context.Context, entryID string) ([]byte, error) {
	return c.get(ctx, "/entries/"+url.PathEscape(entryID)+"/statement", MediaTypeStatement+", "+MediaTypeCOSE, scitt.MaxStatementSize)
}

// Keys returns the service's key set (/.well-known/scitt-keys), cached.
func (c *Client) Keys(ctx context.Context) (keys.Set, error) {
	c.keysMu.Lock()
	defer c.keysMu.Unlock()
	if c.keys != nil && time.Since(c.keysTime) < c.keysTTL {
		return c.keys, nil
	}
	b, err := c.get(ctx, "/.well-known/scitt-keys", MediaTypeCBOR, MaxKeySetSize)
	if err != nil {
		return nil, fmt.Errorf("fetch key set: %w", err)
	}
	ks, err := keys.ParsePublic(b)
	if err != nil {
		return nil, fmt.Errorf("fetch key set: %w", err)
	}
	c.keys, c.keysTime = ks, time.Now()
	return ks, nil
}

// FetchKeys fetches the COSE_KeySet of the service at baseURL.
func FetchKeys(ctx context.Context, baseURL string) (keys.Set, error) {
	c, err := NewClient(baseURL)
	if err != nil {
		return nil, err
	}
	return c.Keys(ctx)
}

func (c *Client) get(ctx context.Context, path, accept string, limit int64) ([]byte, error) {
	resp, body, err := c.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+path, nil)
		if err == nil {
			req.Header.Set("Accept", accept+", "+MediaTypeProblemDetails)
		}
		return req, err
	}, limit)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s: status %d", ErrProtocol, path, resp.StatusCode)
	}
	return body, nil
}

// do sends a request, retrying transport errors, 429 and 5xx. It returns
// the final response (body read and closed) for any status below 400, and a
// *Problem error for 4xx/5xx.
func (c *Client) do(ctx context.Context, newReq func() (*http.Request, error), limit int64) (*http.Response, []byte, error) {
	wait := c.minWait
	var lastErr error
	for attempt := 0; attempt < c.attempts; attempt++ {
		if attempt > 0 {
			d := jitter(wait)
			wait = min(2*wait, c.maxWait)
			if ra, ok := retryAfterErr(lastErr); ok {
				d = ra
			}
			if err := sleep(ctx, d); err != nil {
				return nil, nil, errors.Join(err, lastErr)
			}
		}
		req, err := newReq()
		if err != nil {
			return nil, nil, err
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			lastErr = err
			continue
		}
		body, err := readLimited(resp.Body, limit)
		resp.Body.Close()
		if err != nil {
			lastErr = err
			continue
		}
		if resp.StatusCode < 400 {
			return resp, body, nil
		}
		p := problemFrom(resp, body)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			lastErr = &retryable{p: p, after: resp}
			continue
		}
		return resp, nil, p
	}
	var r *retryable
	if errors.As(lastErr, &r) {
		return nil, nil, r.p
	}
	return nil, nil, lastErr
}

type retryable struct {
	p     *Problem
	after *http.Response
}

func (r *retryable) Error() string { return r.p.Error() }
func (r *retryable) Unwrap() error { return r.p }

func retryAfterErr(err error) (time.Duration, bool) {
	var r *retryable
	if errors.As(err, &r) {
		return retryAfter(r.after)
	}
	return 0, false
}

func problemFrom(resp *http.Response, body []byte) *Problem {
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == MediaTypeProblemDetails {
		if p, err := ParseProblem(body); err == nil {
			p.Status = resp.StatusCode
			return p
		}
	}
	return &Problem{Title: http.StatusText(resp.StatusCode), Status: resp.StatusCode}
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: response larger than %d bytes", ErrProtocol, limit)
	}
	return b, nil
}

// retryAfter reads Retry-After as seconds or an HTTP date (capped at 1 min).
func retryAfter(resp *http.Response) (time.Duration, bool) {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return min(time.Duration(n)*time.Second, time.Minute), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), time.Minute), true
	}
	return 0, false
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) resolve(loc string) (string, error) {
	if loc == "" {
		return "", fmt.Errorf("%w: no Location header", ErrProtocol)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("%w: Location %q: %w", ErrProtocol, loc, err)
	}
	return c.base.ResolveReference(u).String(), nil
}

func entryIDFrom(loc string) string {
	i := strings.LastIndex(loc, "/entries/")
	if i < 0 {
		return ""
	}
	return strings.SplitN(loc[i+len("/entries/"):], "/", 2)[0]
}

// operation is the body older servers send with 202 (SCRAPI -02 and
// scitt-ccf-ledger's legacy mode).
type operation struct {
	OperationID string `json:"operationId" cbor:"operationId"`
	Status      string `json:"status" cbor:"status"`
	EntryID     string `json:"entryId" cbor:"entryId"`
	Error       string `json:"error" cbor:"error"`
}

func isOperationBody(resp *http.Response) bool {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return ct == "application/json" || ct == MediaTypeCBOR
}

func parseOperation(b []byte) (*operation, error) {
	var op operation
	if err := json.Unmarshal(b, &op); err != nil {
		if cerr := problemDec.Unmarshal(b, &op); cerr != nil {
			return nil, fmt.Errorf("%w: operation body is neither JSON nor CBOR", ErrProtocol)
		}
	}
	if op.OperationID == "" && op.EntryID == "" {
		return nil, fmt.Errorf("%w: operation body has no operationId", ErrProtocol)
	}
	return &op, nil
}

// RegisterTransparent registers a Signed (or Transparent) Statement and
// returns the Transparent Statement: the statement with the new receipt added
// under label 394 (RFC 9943 §7), together with the receipt.
func (c *Client) RegisterTransparent(ctx context.Context, statement []byte) (transparent []byte, reg *Registration, err error) {
	reg, err = c.Register(ctx, statement)
	if err != nil {
		return nil, nil, err
	}
	transparent, err = scitt.AddReceipt(statement, reg.Receipt)
	if err != nil {
		return nil, nil, fmt.Errorf("add receipt: %w", err)
	}
	return transparent, reg, nil
}
