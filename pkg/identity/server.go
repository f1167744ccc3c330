package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// MaxFormSize bounds the POST /token body.
const MaxFormSize = 64 << 10

// Server is the Identity Server, an http.Handler serving POST /token and
// GET /.well-known/wit-bundle. Create it with New or NewFromFile.
type Server struct {
	cfg      Config
	key      *keys.PrivateKey
	bundle   *wimse.Bundle
	ci       *ciVerifier
	dpop     wimse.Replayer
	now      func() time.Time
	log      *slog.Logger
	mux      *http.ServeMux
	tokenURL string
}

// Option configures a Server.
type Option func(*options) error

type options struct {
	key     *keys.PrivateKey
	retired []jose.JSONWebKey
	client  *http.Client
	now     func() time.Time
	log     *slog.Logger
	replay  int
	shared  func(scope string) wimse.Replayer
}

// WithSigningKey sets the WIT signing key. Default: Config.SigningKey when
// set, else a fresh ES256 key.
func WithSigningKey(k *keys.PrivateKey) Option {
	return func(o *options) error { o.key = k; return nil }
}

// WithRetiredKeys keeps old public keys in the bundle after a rotation, so
// that WITs they signed stay verifiable. Default: none.
func WithRetiredKeys(keys ...jose.JSONWebKey) Option {
	return func(o *options) error { o.retired = append(o.retired, keys...); return nil }
}

// WithHTTPClient sets the client used for OIDC discovery and JWKS. Default:
// a client with a 10 s timeout.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error { o.client = c; return nil }
}

// WithClock sets the time source. Default: time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error { o.now = now; return nil }
}

// WithLogger logs one line per decision (issuer, identifier, outcome; never a
// token or a key). Default: no logging.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error { o.log = l; return nil }
}

// WithReplayCapacity sets how many unexpired CI token and DPoP jti values
// are remembered (each). Default: 100000.
func WithReplayCapacity(n int) Option {
	return func(o *options) error { o.replay = n; return nil }
}

// WithSharedReplay records used CI token and DPoP jti values in a store
// shared by every replica (scope "ci" or "dpop"), in front of the in-memory
// caches, so that a token used on one replica is refused by the others
// (storage/aws.Replay on the replicas' database). Default: memory only.
func WithSharedReplay(store func(scope string) wimse.Replayer) Option {
	return func(o *options) error { o.shared = store; return nil }
}

// NewFromFile loads the configuration file and calls New.
func NewFromFile(ctx context.Context, file string, opts ...Option) (*Server, error) {
	cfg, err := LoadConfig(file)
	if err != nil {
		return nil, err
	}
	return New(ctx, *cfg, opts...)
}

// replayer is the jti record of one scope: memory, behind the shared store
// when one is configured.
func (o *options) replayer(scope string) wimse.Replayer {
	local := wimse.NewReplayCache(o.replay)
	if o.shared == nil {
		return local
	}
	return wimse.Layered(o.shared(scope), local)
}

// New validates cfg and returns the server. cfg.Issuer must be set (the serve
// command sets it to its own URL). Issuers using discovery are contacted on
// their first token, not here.
func New(ctx context.Context, cfg Config, opts ...Option) (*Server, error) {
	o := options{client: &http.Client{Timeout: 10 * time.Second}, now: time.Now, replay: 100000}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	cfg.Providers = append([]ProviderConfig(nil), cfg.Providers...)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Issuer == "" {
		return nil, fmt.Errorf("%w: issuer is required (the identity server's external URL)", ErrConfig)
	}
	if o.key == nil && cfg.SigningKey != "" {
		k, err := loadSigningKey(cfg.SigningKey)
		if err != nil {
			return nil, err
		}
		o.key = k
	}
	if o.key == nil {
		k, err := keys.Generate(cose.AlgorithmES256)
		if err != nil {
			return nil, err
		}
		o.key = k
	}
	if len(o.key.KID) == 0 {
		return nil, fmt.Errorf("%w: the signing key needs a kid", ErrConfig)
	}
	s := &Server{
		cfg: cfg, key: o.key, now: o.now, log: o.log, dpop: o.replayer("dpop"),
		tokenURL: strings.TrimSuffix(cfg.Issuer, "/") + wimse.TokenPath,
	}
	s.bundle = &wimse.Bundle{TrustDomain: cfg.TrustDomain, Issuers: []string{cfg.Issuer}, Keys: append([]jose.JSONWebKey{o.key.PublicJWK()}, o.retired...)}
	ci, err := newCIVerifier(&s.cfg, o.client, o.now, o.replayer("ci"))
	if err != nil {
		return nil, err
	}
	s.ci = ci
	s.mux = http.NewServeMux()
	s.mux.HandleFunc(wimse.TokenPath, s.serveToken)
	s.mux.HandleFunc("GET "+wimse.BundlePath, s.serveBundle)
	return s, nil
}

func loadSigningKey(file string) (*keys.PrivateKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: signingKey: %w", ErrConfig, err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("%w: signingKey %s: not a JWK", ErrConfig, file)
	}
	k, err := keys.FromJWK(jwk)
	if err != nil {
		return nil, fmt.Errorf("%w: signingKey %s: %w", ErrConfig, file, err)
	}
	return k, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Bundle returns the WIT bundle this server publishes (issuer pinned).
func (s *Server) Bundle() *wimse.Bundle { return s.bundle }

// TokenURL is the token endpoint URL DPoP proofs must name.
func (s *Server) TokenURL() string { return s.tokenURL }

func (s *Server) serveBundle(w http.ResponseWriter, _ *http.Request) {
	b, err := s.bundle.Marshal()
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "bundle unavailable")
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	w.Write(b)
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	wit, exp, ident, err := s.exchange(r)
	if err != nil {
		status, code := oauthError(err)
		s.logf(r.Context(), "identity: token refused", slog.String("error", code), slog.String("reason", err.Error()))
		writeOAuthError(w, status, code, err.Error())
		return
	}
	s.logf(r.Context(), "identity: WIT issued", slog.String("sub", ident), slog.Time("exp", exp))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(wimse.TokenResponse{
		AccessToken: wit, IssuedTokenType: wimse.TokenTypeJWT, TokenType: "N_A",
		ExpiresIn: int64(exp.Sub(s.now()).Seconds()),
	})
}

func (s *Server) logf(ctx context.Context, msg string, attrs ...slog.Attr) {
	if s.log != nil {
		s.log.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
	}
}

// exchange runs one token exchange: form, DPoP, CI token, policy, WIT.
func (s *Server) exchange(r *http.Request) (string, time.Time, string, error) {
	var zero time.Time
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return "", zero, "", fmt.Errorf("%w: content type must be application/x-www-form-urlencoded", ErrRequest)
	}
	r.Body = http.MaxBytesReader(nil, r.Body, MaxFormSize)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", zero, "", fmt.Errorf("%w: form body over %d bytes", ErrTooLarge, MaxFormSize)
		}
		return "", zero, "", fmt.Errorf("%w: %w", ErrRequest, err)
	}
	f := r.PostForm
	for _, k := range []string{"grant_type", "subject_token", "subject_token_type", "requested_token_type", "audience"} {
		if len(f[k]) > 1 {
			return "", zero, "", fmt.Errorf("%w: %s repeated", ErrRequest, k)
		}
	}
	if g := f.Get("grant_type"); g != wimse.GrantTypeTokenExchange {
		return "", zero, "", fmt.Errorf("%w: unsupported grant_type %q", errUnsupportedGrant, g)
	}
	if t := f.Get("subject_token_type"); t != wimse.TokenTypeIDToken && t != wimse.TokenTypeJWT {
		return "", zero, "", fmt.Errorf("%w: subject_token_type %q: want id_token or jwt", ErrRequest, t)
	}
	if t := f.Get("requested_token_type"); t != "" && t != wimse.TokenTypeJWT {
		return "", zero, "", fmt.Errorf("%w: requested_token_type %q: only %s", ErrRequest, t, wimse.TokenTypeJWT)
	}
	if a := f.Get("audience"); a != "" && a != s.cfg.Issuer {
		return "", zero, "", fmt.Errorf("%w: audience %q is not this identity server", errInvalidTarget, a)
	}
	subject := f.Get("subject_token")
	if subject == "" {
		return "", zero, "", fmt.Errorf("%w: subject_token is required", ErrRequest)
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return "", zero, "", fmt.Errorf("%w: want exactly one DPoP header", ErrDPoP)
	}
	now := s.now()
	// The proof's jti is recorded only once the CI token verified: proofs
	// sent with garbage CI tokens must not fill the replay cache.
	cnf, proof, err := verifyDPoP(proofs[0], s.tokenURL, now)
	if err != nil {
		return "", zero, "", err
	}
	ci, err := s.ci.verify(r.Context(), subject)
	if err != nil {
		return "", zero, "", err
	}
	if err := ci.Provider.applyPolicy(ci.Claims); err != nil {
		return "", zero, "", err
	}
	kind := kinds[ci.Provider.Type]
	src := ci.Provider.Identifier
	if src == "" {
		src = kind.template
	}
	tmpl, err := ParseTemplate(src, s.cfg.TrustDomain, kind.depth)
	if err != nil {
		return "", zero, "", fmt.Errorf("%w: %w", ErrConfig, err)
	}
	claims := map[string]string{"trustDomain": s.cfg.TrustDomain}
	for k, v := range ci.Claims {
		claims[k] = v
	}
	id, err := tmpl.Expand(claims)
	if err != nil {
		return "", zero, "", err
	}
	exp := now.Add(s.cfg.WITLifetime)
	if ci.Expiry.Before(exp) {
		exp = ci.Expiry
	}
	if !exp.After(now) {
		return "", zero, "", fmt.Errorf("CI token: %w: nothing left of its lifetime", wimse.ErrExpired)
	}
	if err := proof.use(s.dpop, now); err != nil {
		return "", zero, "", err
	}
	if err := s.ci.consumeJTI(ci); err != nil {
		return "", zero, "", err
	}
	wit, err := wimse.MintWIT(s.key, wimse.WITClaims{
		Subject: id, Issuer: s.cfg.Issuer, IssuedAt: now, NotBefore: now, Expiry: exp, Key: cnf,
		Extra: map[string]any{CIClaim: ci.Provider.carriedClaims(ci.Claims)},
	})
	if err != nil {
		return "", zero, "", fmt.Errorf("%w: %w", errServer, err)
	}
	return wit, exp, id.String(), nil
}

var (
	errUnsupportedGrant = errors.New("unsupported grant type")
	errInvalidTarget    = errors.New("invalid target")
	errServer           = errors.New("server error")
)

// oauthError maps an exchange error to an HTTP status and an RFC 6749 /
// RFC 8693 / RFC 9449 error code.
func oauthError(err error) (int, string) {
	switch {
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "invalid_request"
	case errors.Is(err, ErrDPoP):
		return http.StatusBadRequest, "invalid_dpop_proof"
	case errors.Is(err, errUnsupportedGrant):
		return http.StatusBadRequest, "unsupported_grant_type"
	case errors.Is(err, errInvalidTarget):
		return http.StatusBadRequest, "invalid_target"
	case errors.Is(err, ErrIssuerUnavailable):
		return http.StatusServiceUnavailable, "temporarily_unavailable"
	case errors.Is(err, wimse.ErrReplayCacheFull), errors.Is(err, wimse.ErrReplayUnavailable):
		return http.StatusServiceUnavailable, "temporarily_unavailable"
	case errors.Is(err, errServer), errors.Is(err, ErrConfig):
		return http.StatusInternalServerError, "server_error"
	}
	// RFC 8693 §2.2.2: an invalid or unacceptable subject_token is
	// invalid_request.
	return http.StatusBadRequest, "invalid_request"
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
