package wimse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// HTTP header names (workload-creds §3.3, wpt §3.2).
const (
	HeaderWIT = "Workload-Identity-Token"
	HeaderWPT = "Workload-Proof-Token"
)

// Credentials are a workload's WIT and the private key bound to it.
type Credentials struct {
	WIT string
	Key *keys.PrivateKey
}

// Transport is an http.RoundTripper that adds the Workload-Identity-Token and a
// fresh Workload-Proof-Token (aud = the request's target URI without query or
// fragment) to every request.
type Transport struct {
	// Base carries the request; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Credentials are sent with every request.
	Credentials Credentials
	// ProofLifetime is the WPT lifetime; zero means DefaultProofLifetime.
	ProofLifetime time.Duration
	// Audience, when set, returns the WPT aud for a request instead of its
	// target URI (for deployment-specific audiences).
	Audience func(*http.Request) string
}

// RoundTrip implements http.RoundTripper. It does not modify the caller's
// request.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	aud := TargetURI(req.URL)
	if t.Audience != nil {
		aud = t.Audience(req)
	}
	wpt, err := MintWPT(t.Credentials.Key, t.Credentials.WIT, aud, t.ProofLifetime)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("wimse transport: %w", err)
	}
	r := req.Clone(req.Context())
	r.Header.Set(HeaderWIT, t.Credentials.WIT)
	r.Header.Set(HeaderWPT, wpt)
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// TargetURI returns u without query, fragment and userinfo: the default WPT
// audience (wpt §3.1).
func TargetURI(u *url.URL) string {
	c := *u
	c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment, c.User = "", false, "", "", nil
	return c.String()
}

// Authenticator verifies the WIMSE headers of incoming requests.
type Authenticator struct {
	// Bundles are the trusted WIT bundles, one per trust domain.
	Bundles BundleSource
	// Origins are the external origins of this service ("https://ts.example"),
	// from configuration: a WPT aud is accepted when it equals an origin
	// followed by the request path.
	Origins []string
	// Audiences are further exact aud values accepted (deployment specific).
	Audiences []string
	// Replay is the WPT jti cache; it must not be nil.
	Replay *ReplayCache
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Identity is what Authenticate returns: the verified WIT and its proof.
type Identity struct {
	WIT   *WIT
	Proof *WPT
}

// Authenticate verifies exactly one WIT and one WPT on r. Errors wrap this
// package's sentinels ([ErrMissingHeader] when a header is absent or repeated).
func (a *Authenticator) Authenticate(r *http.Request) (*Identity, error) {
	if a.Replay == nil {
		return nil, errors.New("wimse: authenticator without a replay cache")
	}
	wits, wpts := r.Header.Values(HeaderWIT), r.Header.Values(HeaderWPT)
	if len(wits) != 1 || len(wpts) != 1 {
		return nil, fmt.Errorf("%w: want exactly one %s and one %s", ErrMissingHeader, HeaderWIT, HeaderWPT)
	}
	var opts []VerifyOption
	if a.Now != nil {
		opts = append(opts, WithTime(a.Now()))
	}
	wit, err := ParseWIT(strings.TrimSpace(wits[0]), a.Bundles, opts...)
	if err != nil {
		return nil, err
	}
	auds := append([]string(nil), a.Audiences...)
	for _, o := range a.Origins {
		auds = append(auds, strings.TrimSuffix(o, "/")+r.URL.EscapedPath())
	}
	wpt, err := VerifyWPT(strings.TrimSpace(wpts[0]), wit, ProofPolicy{Audiences: auds, Replay: a.Replay}, opts...)
	if err != nil {
		return nil, err
	}
	return &Identity{WIT: wit, Proof: wpt}, nil
}

// Middleware verifies the WIMSE headers and passes the request on with the
// identity in its context ([FromContext]). Failures get a 400 response with an
// RFC 9457 problem document (workload-creds §3.3 advises 400, not 401); a full
// replay cache gets 503.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.Authenticate(r)
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, ErrReplayCacheFull) {
				status = http.StatusServiceUnavailable
			}
			WriteProblem(w, status, "workload authentication failed", err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// WriteProblem writes an application/problem+json response. The detail is the
// error text, which never contains a token or a key.
func WriteProblem(w http.ResponseWriter, status int, title string, err error) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"title": title, "status": status, "detail": err.Error()})
}

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity Middleware verified for this request.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(*Identity)
	return id, ok && id != nil
}
