package wimse

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// Token types (JOSE typ) for WITs and WPTs (workload-creds §3.1, wpt §3.1).
const (
	TypeWIT = "wit+jwt"
	TypeWPT = "wpt+jwt"
)

// Limits on untrusted input.
const (
	// MaxTokenSize bounds the compact serialization of any WIT or WPT.
	MaxTokenSize = 16 << 10
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
	DefaultLeeway = time.Minute
)

// WIT is a verified Workload Identity Token. Fields are read-only.
type WIT struct {
	// Raw is the compact serialization exactly as received.
	Raw string
	// ID is the workload identifier (sub).
	ID Identifier
	// Issuer is the iss claim ("" when absent).
	Issuer string
	// KeyID is the kid of the issuer key that signed the WIT.
	KeyID string
	// Algorithm is the JWS algorithm of the WIT signature.
	Algorithm jose.SignatureAlgorithm
	// IssuedAt, NotBefore and Expiry are the iat, nbf and exp claims (zero when
	// absent; exp is always present).
	IssuedAt, NotBefore, Expiry time.Time
	// JTI is the jti claim ("" when absent).
	JTI string
	// Key is the public confirmation key (cnf.jwk); Key.Algorithm is set.
	Key jose.JSONWebKey
	// Claims holds every claim of the payload, for callers that read private
	// claims such as the namespaced CI claims.
	Claims map[string]json.RawMessage
}

// WITClaims are the claims MintWIT signs.
type WITClaims struct {
	Subject   Identifier
	Issuer    string
	IssuedAt  time.Time // zero: now
	NotBefore time.Time // zero: IssuedAt
	Expiry    time.Time // required
	JTI       string    // "": 128 random bits
	// Key is the workload's public key; Key.Algorithm must be set.
	Key jose.JSONWebKey
	// Extra claims (e.g. "https://trustfabric.dev/ci"); they may not replace a
	// registered claim.
	Extra map[string]any
}

// MintWIT signs a WIT with the identity server key. The header is
// {alg, typ: "wit+jwt", kid}; there is never an aud.
func MintWIT(key *keys.PrivateKey, c WITClaims) (string, error) {
	if c.Subject.IsZero() {
		return "", fmt.Errorf("%w: WIT subject is required", ErrMalformed)
	}
	if c.Expiry.IsZero() {
		return "", fmt.Errorf("%w: WIT expiry is required", ErrMalformed)
	}
	if len(key.KID) == 0 {
		return "", fmt.Errorf("%w: the issuer key needs a kid", ErrMalformed)
	}
	cnf, err := confirmationJWK(c.Key)
	if err != nil {
		return "", err
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = c.IssuedAt
	}
	if c.JTI == "" {
		c.JTI = randomID()
	}
	claims := map[string]any{}
	for k, v := range c.Extra {
		claims[k] = v
	}
	for _, k := range []string{"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "cnf"} {
		if _, ok := claims[k]; ok {
			return "", fmt.Errorf("%w: extra claim %q would replace a registered claim", ErrMalformed, k)
		}
	}
	claims["sub"] = c.Subject.String()
	if c.Issuer != "" {
		claims["iss"] = c.Issuer
	}
	claims["iat"] = c.IssuedAt.Unix()
	claims["nbf"] = c.NotBefore.Unix()
	claims["exp"] = c.Expiry.Unix()
	claims["jti"] = c.JTI
	claims["cnf"] = map[string]any{"jwk": cnf}
	s, err := newJOSESigner(key, TypeWIT, true)
	if err != nil {
		return "", err
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign WIT: %w", err)
	}
	return tok, nil
}

// confirmationJWK validates a workload public key and returns it as the JSON
// object placed in cnf.jwk (public, with alg; no kid needed).
func confirmationJWK(k jose.JSONWebKey) (json.RawMessage, error) {
	if k.Key == nil {
		return nil, fmt.Errorf("%w: the confirmation key is required", ErrMalformed)
	}
	pub := k.Public()
	if pub.Key == nil {
		return nil, fmt.Errorf("%w: the confirmation key cannot be made public", ErrMalformed)
	}
	if err := checkKeyAlg(pub.Key, jose.SignatureAlgorithm(k.Algorithm)); err != nil {
		return nil, fmt.Errorf("confirmation key: %w", err)
	}
	pub.Algorithm = k.Algorithm
	pub.Use = ""
	b, err := pub.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("%w: confirmation key: %w", ErrMalformed, err)
	}
	return b, nil
}

// VerifyOption changes how ParseWIT and VerifyWPT check a token.
type VerifyOption func(*verifyOptions) error

type verifyOptions struct {
	now       time.Time
	leeway    time.Duration
	leewaySet bool
}

func newVerifyOptions(opts []VerifyOption) (verifyOptions, error) {
	o := verifyOptions{leeway: DefaultLeeway}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	if o.now.IsZero() {
		o.now = time.Now()
	}
	return o, nil
}

// WithTime checks validity at t instead of now (e.g. a statement's
// registration time). Default: time.Now().
func WithTime(t time.Time) VerifyOption {
	return func(o *verifyOptions) error { o.now = t; return nil }
}

// WithLeeway sets the clock skew tolerated on exp, nbf and iat. Default: one
// minute for WITs, DefaultProofLeeway for WPTs; values above one minute (WITs)
// or MaxProofLeeway (WPTs) are capped.
func WithLeeway(d time.Duration) VerifyOption {
	return func(o *verifyOptions) error { o.leeway, o.leewaySet = min(max(d, 0), DefaultLeeway), true; return nil }
}

type witHeaderClaims struct {
	jwt.Claims
	Cnf *struct {
		JWK json.RawMessage `json:"jwk"`
	} `json:"cnf"`
}

// ParseWIT verifies a WIT against the bundle of its subject's trust domain:
// typ "wit+jwt", kid present and in the bundle, an allowed algorithm, the
// signature, iss (when the bundle lists issuers), no aud, exp/nbf/iat with the
// leeway, and a public cnf.jwk with an allowed alg.
func ParseWIT(token string, bundles BundleSource, opts ...VerifyOption) (*WIT, error) {
	o, err := newVerifyOptions(opts)
	if err != nil {
		return nil, err
	}
	tok, hdr, err := parseCompact(token, parseAlgorithms)
	if err != nil {
		return nil, fmt.Errorf("WIT: %w", err)
	}
	if typ := headerType(hdr); typ != TypeWIT && typ != "application/"+TypeWIT {
		return nil, fmt.Errorf("WIT: %w: typ %q, want %q", ErrWrongType, typ, TypeWIT)
	}
	if hdr.KeyID == "" {
		return nil, fmt.Errorf("WIT: %w: the header has no kid", ErrMalformed)
	}
	var c witHeaderClaims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return nil, fmt.Errorf("WIT: %w: claims: %w", ErrMalformed, err)
	}
	if c.Subject == "" {
		return nil, fmt.Errorf("WIT: %w: no sub", ErrMalformed)
	}
	id, err := ParseIdentifier(c.Subject)
	if err != nil {
		return nil, fmt.Errorf("WIT: sub: %w", err)
	}
	b, err := bundles.Bundle(id.TrustDomain())
	if err != nil {
		return nil, fmt.Errorf("WIT: %w", err)
	}
	if alg := jose.SignatureAlgorithm(hdr.Algorithm); !slices.Contains(b.algorithms(), alg) {
		return nil, fmt.Errorf("WIT: %w: %q is not accepted for trust domain %q", ErrUnsupportedAlgorithm, alg, id.TrustDomain())
	}
	key, ok := b.Key(hdr.KeyID)
	if !ok {
		return nil, fmt.Errorf("WIT: %w: kid %q in the bundle of %q", ErrKeyNotFound, hdr.KeyID, id.TrustDomain())
	}
	all := map[string]json.RawMessage{}
	if err := tok.Claims(key.Key, &all); err != nil {
		return nil, fmt.Errorf("WIT: %w: %w", ErrBadSignature, err)
	}
	if len(b.Issuers) > 0 && !slices.Contains(b.Issuers, c.Issuer) {
		return nil, fmt.Errorf("WIT: %w: issuer %q is not an issuer of %q", ErrUntrustedDomain, c.Issuer, id.TrustDomain())
	}
	if _, ok := all["aud"]; ok {
		return nil, fmt.Errorf("WIT: %w: a WIT must not carry aud", ErrAudience)
	}
	if c.Expiry == nil {
		return nil, fmt.Errorf("WIT: %w: no exp", ErrMalformed)
	}
	if err := checkTimes(&c.Claims, o); err != nil {
		return nil, fmt.Errorf("WIT: %w", err)
	}
	if c.Cnf == nil || len(c.Cnf.JWK) == 0 {
		return nil, fmt.Errorf("WIT: %w: no cnf.jwk", ErrMalformed)
	}
	cnf, err := parseConfirmationKeyIn(c.Cnf.JWK, b.algorithms())
	if err != nil {
		return nil, fmt.Errorf("WIT: %w", err)
	}
	return &WIT{
		Raw: token, ID: id, Issuer: c.Issuer, KeyID: hdr.KeyID, Algorithm: jose.SignatureAlgorithm(hdr.Algorithm),
		IssuedAt: numericTime(c.IssuedAt), NotBefore: numericTime(c.NotBefore), Expiry: numericTime(c.Expiry),
		JTI: c.ID, Key: cnf, Claims: all,
	}, nil
}

func parseConfirmationKeyIn(raw json.RawMessage, allowed []jose.SignatureAlgorithm) (jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return k, fmt.Errorf("%w: cnf.jwk: %w", ErrMalformed, err)
	}
	if !k.IsPublic() {
		return k, fmt.Errorf("%w: cnf.jwk must be a public key", ErrMalformed)
	}
	if k.Algorithm == "" {
		return k, fmt.Errorf("%w: cnf.jwk has no alg", ErrMalformed)
	}
	if err := checkKeyAlgIn(k.Key, jose.SignatureAlgorithm(k.Algorithm), allowed); err != nil {
		return k, fmt.Errorf("cnf.jwk: %w", err)
	}
	return k, nil
}

// parseCompact parses a compact JWS with a size limit and an algorithm list,
// and requires exactly one signature.
func parseCompact(token string, algs []jose.SignatureAlgorithm) (*jwt.JSONWebToken, jose.Header, error) {
	if len(token) > MaxTokenSize {
		return nil, jose.Header{}, fmt.Errorf("%w: token is %d bytes, the limit is %d", ErrMalformed, len(token), MaxTokenSize)
	}
	tok, err := jwt.ParseSigned(token, algs)
	if err != nil {
		var alg string
		if h, herr := peekAlg(token); herr == nil {
			alg = h
		}
		if alg != "" && !slices.Contains(algs, jose.SignatureAlgorithm(alg)) {
			return nil, jose.Header{}, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, alg)
		}
		return nil, jose.Header{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(tok.Headers) != 1 {
		return nil, jose.Header{}, fmt.Errorf("%w: want exactly one signature", ErrMalformed)
	}
	return tok, tok.Headers[0], nil
}

// peekAlg reads the alg of a compact JWS header without verifying anything;
// only used to name the reason of a parse failure.
func peekAlg(token string) (string, error) {
	i := 0
	for i < len(token) && token[i] != '.' {
		i++
	}
	raw, err := base64.RawURLEncoding.DecodeString(token[:i])
	if err != nil {
		return "", err
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", err
	}
	if h.Alg == "" {
		return "", errors.New("no alg")
	}
	return h.Alg, nil
}

func headerType(h jose.Header) string {
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	return typ
}

func checkTimes(c *jwt.Claims, o verifyOptions) error {
	now := o.now
	if c.Expiry != nil && now.After(c.Expiry.Time().Add(o.leeway)) {
		return fmt.Errorf("%w: exp %s is before %s", ErrExpired, c.Expiry.Time().UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if c.NotBefore != nil && now.Add(o.leeway).Before(c.NotBefore.Time()) {
		return fmt.Errorf("%w: nbf %s is after %s", ErrNotYetValid, c.NotBefore.Time().UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if c.IssuedAt != nil && now.Add(o.leeway).Before(c.IssuedAt.Time()) {
		return fmt.Errorf("%w: iat %s is after %s", ErrNotYetValid, c.IssuedAt.Time().UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

func numericTime(n *jwt.NumericDate) time.Time {
	if n == nil {
		return time.Time{}
	}
	return n.Time()
}

// randomID returns 128 random bits, base64url.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseWITUnverified reads the sub and cnf.jwk of a WIT without verifying
// its signature or times: for the workload that holds the WIT it was just
// issued (to name itself in a statement and check it holds the right key).
// Never base a trust decision on it: verifiers use [ParseWIT]. It reads WITs
// of every algorithm a trust domain's bundle may allow (EdDSA included).
func ParseWITUnverified(token string) (Identifier, jose.JSONWebKey, error) {
	tok, _, err := parseCompact(token, parseAlgorithms)
	if err != nil {
		return Identifier{}, jose.JSONWebKey{}, fmt.Errorf("WIT: %w", err)
	}
	var c witHeaderClaims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return Identifier{}, jose.JSONWebKey{}, fmt.Errorf("WIT: %w: %w", ErrMalformed, err)
	}
	id, err := ParseIdentifier(c.Subject)
	if err != nil {
		return Identifier{}, jose.JSONWebKey{}, fmt.Errorf("WIT: sub: %w", err)
	}
	if c.Cnf == nil {
		return Identifier{}, jose.JSONWebKey{}, fmt.Errorf("WIT: %w: no cnf.jwk", ErrMalformed)
	}
	cnf, err := parseConfirmationKeyIn(c.Cnf.JWK, parseAlgorithms)
	if err != nil {
		return Identifier{}, jose.JSONWebKey{}, fmt.Errorf("WIT: %w", err)
	}
	return id, cnf, nil
}
