package wimse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
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
	// Replay records WPT jti values (a [ReplayCache], or [Layered] over a
	// store shared by replicas); it must not be nil.
	Replay Replayer
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// ProofLeeway is the clock skew tolerated on a WPT's exp, nbf and iat;
	// zero means DefaultProofLeeway, and it is capped at MaxProofLeeway.
	ProofLeeway time.Duration
	// Realm is the realm of the WWW-Authenticate challenge; "" means the
	// first origin.
	Realm string
}

// AuthScheme is the auth-scheme of the WWW-Authenticate challenge sent with
// a 401 for a request without valid WIMSE headers (RFC 9110 §11.6.1,
// §15.5.2): `WIMSE realm="<origin>"` when the headers are absent, plus
// error="invalid_token" and an error_description otherwise (the parameters
// of RFC 6750 §3). No scheme is registered for WIMSE; the name is ours.
const AuthScheme = "WIMSE"

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
	if len(wits) == 0 && len(wpts) == 0 {
		return nil, fmt.Errorf("%w: %w: send one %s and one %s", ErrMissingHeader, errAbsent, HeaderWIT, HeaderWPT)
	}
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
	leeway := a.ProofLeeway
	if leeway == 0 {
		leeway = DefaultProofLeeway
	}
	wpt, err := VerifyWPT(strings.TrimSpace(wpts[0]), wit, ProofPolicy{Audiences: auds, Replay: a.Replay, Leeway: leeway}, opts...)
	if err != nil {
		return nil, err
	}
	return &Identity{WIT: wit, Proof: wpt}, nil
}

// Middleware verifies the WIMSE headers and passes the request on with the
// identity in its context ([FromContext]). Failures get the status and
// headers of [Authenticator.Challenge] and an RFC 9457 problem document.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.Authenticate(r)
		if err != nil {
			WriteProblem(w, a.Challenge(w, err), "workload authentication failed", err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// Challenge sets the response headers for an [Authenticator.Authenticate]
// error and returns the status to answer with: 503 with Retry-After when the
// replay cache is full, 429 with Retry-After when the caller has too many
// unexpired proofs ([ErrReplayQuota]), else 401 with a WWW-Authenticate
// challenge ([AuthScheme]). workload-creds §3.3 advises 400 instead, because
// a 401 needs a challenge; we send one, so that generic HTTP clients learn
// what authentication the resource wants.
func (a *Authenticator) Challenge(w http.ResponseWriter, err error) int {
	switch {
	case errors.Is(err, ErrReplayCacheFull), errors.Is(err, ErrReplayUnavailable):
		w.Header().Set("Retry-After", "1")
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrReplayQuota):
		w.Header().Set("Retry-After", strconv.Itoa(int((MaxProofLifetime+MaxProofLeeway)/time.Second)))
		return http.StatusTooManyRequests
	}
	realm := a.Realm
	if realm == "" && len(a.Origins) > 0 {
		realm = a.Origins[0]
	}
	if realm == "" {
		realm = "wimse"
	}
	c := AuthScheme + " realm=" + quote(realm)
	if !isAbsent(err) {
		c += `, error="invalid_token", error_description=` + quote(err.Error())
	}
	w.Header().Set("WWW-Authenticate", c)
	return http.StatusUnauthorized
}

// errAbsent marks ErrMissingHeader errors where no WIMSE header was sent at
// all (the challenge then carries no error, RFC 6750 §3.1).
var errAbsent = errors.New("no WIMSE headers")

func isAbsent(err error) bool { return errors.Is(err, errAbsent) }

// quote renders s as an RFC 9110 quoted-string, dropping control characters.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r > 0x7e:
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
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
