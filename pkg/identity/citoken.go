package identity

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// Limits of CI token verification.
const (
	// MaxCITokenSize bounds the CI token.
	MaxCITokenSize = 16 << 10
	// CITokenLeeway is the clock skew tolerated on exp, nbf and iat.
	CITokenLeeway = 60 * time.Second
)

// CIToken is a verified CI OIDC token.
type CIToken struct {
	Provider *ProviderConfig
	Issuer   string
	Subject  string
	Expiry   time.Time
	JTI      string
	// Claims are the token's claims flattened (see provider tables), plus
	// derived claims once the policy ran.
	Claims map[string]string
}

// ciVerifier verifies CI tokens for the configured providers.
type ciVerifier struct {
	providers []*ciProvider
	client    *http.Client
	now       func() time.Time
	replay    wimse.Replayer
}

type ciProvider struct {
	cfg *ProviderConfig

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	// failedAt and failure remember the last failed discovery: it is not
	// tried again within JWKSMinRefresh, so tokens naming an unreachable
	// issuer do not each cost a discovery request.
	failedAt time.Time
	failure  error
}

func newCIVerifier(cfg *Config, client *http.Client, now func() time.Time, replay wimse.Replayer) (*ciVerifier, error) {
	v := &ciVerifier{client: client, now: now, replay: replay}
	for i := range cfg.Providers {
		p := &ciProvider{cfg: &cfg.Providers[i]}
		if p.cfg.JWKS != "" {
			ks, err := loadStaticKeySet(p.cfg.JWKS)
			if err != nil {
				return nil, fmt.Errorf("%w: providers[%d].jwks: %w", ErrConfig, i, err)
			}
			p.verifier = oidc.NewVerifier(p.cfg.Issuer, ks, p.oidcConfig(now))
		}
		v.providers = append(v.providers, p)
	}
	return v, nil
}

func (p *ciProvider) oidcConfig(now func() time.Time) *oidc.Config {
	// Audience and times are checked by verify with typed errors and a 60 s
	// leeway (go-oidc's nbf leeway is 5 min).
	return &oidc.Config{SkipClientIDCheck: true, SkipExpiryCheck: true, SupportedSigningAlgs: p.cfg.algorithms(), Now: now}
}

// oidcVerifier returns the provider's verifier, running discovery on first use
// (so that an unreachable issuer does not stop the server from starting).
// go-oidc requires the discovered issuer to equal the configured one.
func (p *ciProvider) oidcVerifier(ctx context.Context, client *http.Client, now func() time.Time) (*oidc.IDTokenVerifier, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.verifier != nil {
		return p.verifier, nil
	}
	if p.failure != nil && now().Sub(p.failedAt) < JWKSMinRefresh {
		return nil, p.failure
	}
	v, err := p.discover(ctx, client, now)
	if err != nil {
		p.failedAt, p.failure = now(), err
		return nil, err
	}
	p.verifier, p.failure = v, nil
	return v, nil
}

func (p *ciProvider) discover(ctx context.Context, client *http.Client, now func() time.Time) (*oidc.IDTokenVerifier, error) {
	// The key set outlives this request: give discovery and the remote key set
	// a context that is not cancelled with it.
	bg := oidc.ClientContext(context.WithoutCancel(ctx), client)
	dctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	prov, err := oidc.NewProvider(dctx, p.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery of %s: %w", ErrIssuerUnavailable, p.cfg.Issuer, err)
	}
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := prov.Claims(&doc); err != nil || doc.JWKSURI == "" {
		return nil, fmt.Errorf("%w: discovery of %s has no jwks_uri", ErrIssuerUnavailable, p.cfg.Issuer)
	}
	var algs []jose.SignatureAlgorithm
	for _, a := range p.cfg.algorithms() {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	return oidc.NewVerifier(p.cfg.Issuer, newRemoteKeySet(doc.JWKSURI, client, now, algs), p.oidcConfig(now)), nil
}

func loadStaticKeySet(file string) (*oidc.StaticKeySet, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	ks := &oidc.StaticKeySet{}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("JWKS key %q is not a public key", k.KeyID)
		}
		ks.PublicKeys = append(ks.PublicKeys, crypto.PublicKey(k.Key))
	}
	if len(ks.PublicKeys) == 0 {
		return nil, fmt.Errorf("JWKS has no keys")
	}
	return ks, nil
}

// verify checks a CI token: size, algorithm (RS256/ES256), exact iss among
// the providers, signature (discovery or pinned keys), exact aud, and
// exp/nbf/iat within CITokenLeeway. It does not consume the jti (see
// consumeJTI) nor apply the issuance policy.
func (v *ciVerifier) verify(ctx context.Context, raw string) (*CIToken, error) {
	if len(raw) > MaxCITokenSize {
		return nil, fmt.Errorf("%w: CI token is %d bytes, the limit is %d", ErrTooLarge, len(raw), MaxCITokenSize)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		if alg := peekAlg(raw); alg != "" && alg != "RS256" && alg != "ES256" {
			return nil, fmt.Errorf("CI token: %w: %q (RS256 and ES256 only)", wimse.ErrUnsupportedAlgorithm, alg)
		}
		return nil, fmt.Errorf("CI token: %w: %w", wimse.ErrMalformed, err)
	}
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, fmt.Errorf("CI token: %w: %w", wimse.ErrMalformed, err)
	}
	i := slices.IndexFunc(v.providers, func(p *ciProvider) bool { return p.cfg.Issuer == unverified.Issuer })
	if i < 0 {
		return nil, fmt.Errorf("%w: %q is not in the allow-list", ErrUntrustedIssuer, unverified.Issuer)
	}
	p := v.providers[i]
	if alg := tok.Headers[0].Algorithm; !slices.Contains(p.cfg.algorithms(), alg) {
		return nil, fmt.Errorf("CI token: %w: %q is not allowed for %s", wimse.ErrUnsupportedAlgorithm, alg, p.cfg.Issuer)
	}
	ov, err := p.oidcVerifier(ctx, v.client, v.now)
	if err != nil {
		return nil, err
	}
	idt, err := ov.Verify(oidc.ClientContext(ctx, v.client), raw)
	if err != nil {
		return nil, fmt.Errorf("CI token: %w: %w", wimse.ErrBadSignature, err)
	}
	if !slices.Contains(idt.Audience, p.cfg.Audience) {
		return nil, fmt.Errorf("CI token: %w: aud %q, want %q", wimse.ErrAudience, idt.Audience, p.cfg.Audience)
	}
	var std jwt.Claims
	if err := idt.Claims(&std); err != nil {
		return nil, fmt.Errorf("CI token: %w: %w", wimse.ErrMalformed, err)
	}
	if std.Expiry == nil {
		return nil, fmt.Errorf("CI token: %w: no exp", wimse.ErrMalformed)
	}
	now := v.now()
	switch {
	case now.After(std.Expiry.Time().Add(CITokenLeeway)):
		return nil, fmt.Errorf("CI token: %w: exp %s", wimse.ErrExpired, std.Expiry.Time().UTC().Format(time.RFC3339))
	case std.NotBefore != nil && now.Add(CITokenLeeway).Before(std.NotBefore.Time()):
		return nil, fmt.Errorf("CI token: %w: nbf %s", wimse.ErrNotYetValid, std.NotBefore.Time().UTC().Format(time.RFC3339))
	case std.IssuedAt != nil && now.Add(CITokenLeeway).Before(std.IssuedAt.Time()):
		return nil, fmt.Errorf("CI token: %w: iat %s", wimse.ErrNotYetValid, std.IssuedAt.Time().UTC().Format(time.RFC3339))
	}
	var all map[string]any
	if err := idt.Claims(&all); err != nil {
		return nil, fmt.Errorf("CI token: %w: %w", wimse.ErrMalformed, err)
	}
	return &CIToken{Provider: p.cfg, Issuer: idt.Issuer, Subject: idt.Subject, Expiry: std.Expiry.Time(), JTI: std.ID, Claims: flattenClaims(all)}, nil
}

// consumeJTI records the token's jti as used until its exp. Tokens of
// providers that always send a jti (GitHub, GitLab) must carry one; others
// without a jti are not replay-checked here (the DPoP proof still is).
func (v *ciVerifier) consumeJTI(t *CIToken) error {
	if t.JTI == "" {
		if kinds[t.Provider.Type].jtiRequired {
			return fmt.Errorf("%w: jti (%s tokens always carry one; without it the token could be exchanged again)", ErrClaims, t.Provider.Type)
		}
		return nil
	}
	key := sha256.Sum256([]byte(t.Issuer + "\x00" + t.JTI))
	if err := v.replay.UseFor("", hex.EncodeToString(key[:]), t.Expiry.Add(CITokenLeeway), v.now()); err != nil {
		return fmt.Errorf("CI token: %w", err)
	}
	return nil
}

// peekAlg reads the alg of a compact JWS header, only to name why parsing
// failed; "" when unreadable.
func peekAlg(token string) string {
	h, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return ""
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(raw, &hdr) != nil {
		return ""
	}
	return hdr.Alg
}
