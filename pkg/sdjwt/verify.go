package sdjwt

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// Defaults of the verification options.
const (
	DefaultLeeway   = time.Minute
	DefaultMaxKBAge = 5 * time.Minute
)

type verifyOptions struct {
	types        []string
	aud, nonce   string
	now          func() time.Time
	leeway       time.Duration
	maxKBAge     time.Duration
	noKeyBinding bool
}

// VerifyOption configures Verify.
type VerifyOption func(*verifyOptions) error

// WithTypes sets the accepted typ headers of the Issuer-signed JWT. Default
// TypeVC only.
func WithTypes(types ...string) VerifyOption {
	return func(o *verifyOptions) error { o.types = types; return nil }
}

// WithAudience requires the KB-JWT's aud to equal aud. Default: not
// checked (the result reports it).
func WithAudience(aud string) VerifyOption {
	return func(o *verifyOptions) error { o.aud = aud; return nil }
}

// WithNonce requires the KB-JWT's nonce to equal nonce. Default: not
// checked (the result reports it).
func WithNonce(nonce string) VerifyOption {
	return func(o *verifyOptions) error { o.nonce = nonce; return nil }
}

// WithClock sets the time of the checks. Default time.Now.
func WithClock(now func() time.Time) VerifyOption {
	return func(o *verifyOptions) error { o.now = now; return nil }
}

// WithLeeway sets the clock skew allowed in time checks. Default
// DefaultLeeway.
func WithLeeway(d time.Duration) VerifyOption {
	return func(o *verifyOptions) error { o.leeway = d; return nil }
}

// WithMaxKeyBindingAge sets how old a KB-JWT's iat may be. Default
// DefaultMaxKBAge.
func WithMaxKeyBindingAge(d time.Duration) VerifyOption {
	return func(o *verifyOptions) error { o.maxKBAge = d; return nil }
}

// WithoutKeyBindingUnsafe accepts an SD-JWT without a KB-JWT (one still
// present is verified). Default: a KB-JWT is required, so a copied
// credential cannot be replayed by someone who does not hold its key.
func WithoutKeyBindingUnsafe() VerifyOption {
	return func(o *verifyOptions) error { o.noKeyBinding = true; return nil }
}

// Result is a verified SD-JWT.
type Result struct {
	// Type is the typ header; IssuerKey the pinned key that verified.
	Type      string
	IssuerKey *keys.PublicKey
	// Claims is the processed payload: plain claims and disclosed ones,
	// with "_sd", "..." and "_sd_alg" removed (§7.1).
	Claims map[string]any
	// Disclosed are the paths of the disclosed claims, in presentation
	// order ("source_ref", "results.0").
	Disclosed []string
	// KeyBound reports a verified KB-JWT, with its claims.
	KeyBound   bool
	Audience   string
	Nonce      string
	KBIssuedAt time.Time
}

// Verify checks s with the pinned issuer keys (RFC 9901 §7.1 and §7.3).
// Each failure is a *VerifyError naming its check and wrapping a sentinel.
func Verify(s *SDJWT, issuerKeys keys.Set, opts ...VerifyOption) (*Result, error) {
	o := verifyOptions{types: []string{TypeVC}, now: time.Now, leeway: DefaultLeeway, maxKBAge: DefaultMaxKBAge}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	now := o.now()
	j, err := jwt(s.issuerParts, s.IssuerJWT, s.issuerRaw)
	if err != nil {
		return nil, fail(CheckFormat, err)
	}
	res := &Result{Type: j.header.Typ}
	if !slices.Contains(o.types, res.Type) {
		return nil, fail(CheckType, fmt.Errorf("%w: typ %q, want %v", ErrType, res.Type, o.types))
	}
	key, err := verifyJWS(j, issuerKeys)
	if err != nil {
		return nil, fail(CheckSignature, err)
	}
	res.IssuerKey = key

	var payload map[string]any
	if err := decodeJSON(j.payload, &payload); err != nil || payload == nil {
		return nil, fail(CheckFormat, fmt.Errorf("%w: payload is not a JSON object", ErrMalformed))
	}
	if alg, ok := payload["_sd_alg"]; ok && alg != HashAlg {
		return nil, fail(CheckFormat, fmt.Errorf("%w: _sd_alg %v is not supported (only %s)", ErrMalformed, alg, HashAlg))
	}
	cnf := payload["cnf"]
	claims, paths, err := resolve(payload, s.Disclosures)
	if err != nil {
		return nil, fail(CheckDisclosures, err)
	}
	res.Claims, res.Disclosed = claims, paths

	if err := checkTimes(claims, now, o.leeway); err != nil {
		return nil, fail(CheckTime, err)
	}

	if s.KeyBinding == "" {
		if o.noKeyBinding {
			return res, nil
		}
		return nil, fail(CheckKeyBinding, fmt.Errorf("%w: the presentation has no key binding JWT", ErrKeyBinding))
	}
	if err := verifyKB(s, cnf, o, now, res); err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return nil, err
		}
		return nil, fail(CheckKeyBinding, err)
	}
	return res, nil
}

// verifyJWS checks a JWS signature with keys: the alg from the one table
// (pkg/keys; never none or HMAC), no crit header, the kid picking keys.
func verifyJWS(j *jwtParts, ks keys.Set) (*keys.PublicKey, error) {
	if j.header.Crit != nil {
		return nil, fmt.Errorf("%w: crit header parameters are not supported", ErrMalformed)
	}
	algName := j.header.Alg
	a, ok := keys.AlgorithmOfJOSE(jose.SignatureAlgorithm(algName))
	if !ok || !slices.Contains(Algorithms, a.JOSE) {
		return nil, fmt.Errorf("%w: alg %q is not allowed", ErrSignature, algName)
	}
	var kid []byte
	if j.header.Kid != "" {
		kid = []byte(j.header.Kid)
	}
	key, err := ks.Verify(kid, a.COSE, j.tbs, j.sig)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return key, nil
}

func numericDate(v any) (time.Time, bool, error) {
	if v == nil {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false, fmt.Errorf("%w: a date is not a number", ErrMalformed)
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > math.MaxInt32*4 {
		return time.Time{}, false, fmt.Errorf("%w: date %s is out of range", ErrMalformed, n)
	}
	return time.Unix(int64(f), 0), true, nil
}

func checkTimes(c map[string]any, now time.Time, leeway time.Duration) error {
	for _, name := range []string{"exp", "nbf", "iat"} {
		t, ok, err := numericDate(c[name])
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if !ok {
			continue
		}
		switch {
		case name == "exp" && now.After(t.Add(leeway)):
			return fmt.Errorf("%w: the credential expired at %s", ErrExpired, t.UTC().Format(time.RFC3339))
		case name != "exp" && now.Add(leeway).Before(t):
			return fmt.Errorf("%w: %s is %s", ErrNotYetValid, name, t.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// verifyKB checks the KB-JWT (§7.3 step 5).
func verifyKB(s *SDJWT, cnf any, o verifyOptions, now time.Time, res *Result) error {
	j, err := jwt(s.kbParts, s.KeyBinding, s.kbRaw)
	if err != nil {
		return err
	}
	if typ := j.header.Typ; typ != TypeKB {
		return fmt.Errorf("%w: key binding JWT typ %q, want %s", ErrKeyBinding, typ, TypeKB)
	}
	c, _ := cnf.(map[string]any)
	jwk, ok := c["jwk"].(map[string]any)
	if !ok {
		return fmt.Errorf("%w: the credential has no cnf.jwk key to bind to", ErrKeyBinding)
	}
	holder, err := holderKey(jwk)
	if err != nil || len(holder) != 1 {
		return fmt.Errorf("%w: cnf.jwk is not a usable key: %w", ErrKeyBinding, err)
	}
	// The holder key is the one in cnf: the KB-JWT's kid, if any, does not
	// choose another.
	if _, err := verifyJWS(&jwtParts{header: jwsHeader{Alg: j.header.Alg, Crit: j.header.Crit}, tbs: j.tbs, sig: j.sig}, holder); err != nil {
		return fmt.Errorf("%w: not signed by the credential's cnf key: %w", ErrKeyBinding, err)
	}
	var kb struct {
		IAT    json.Number `json:"iat"`
		Aud    any         `json:"aud"`
		Nonce  string      `json:"nonce"`
		SDHash string      `json:"sd_hash"`
	}
	if err := decodeJSON(j.payload, &kb); err != nil {
		return fmt.Errorf("%w: key binding JWT payload: %w", ErrMalformed, err)
	}
	if kb.SDHash != s.SDHash() {
		return fmt.Errorf("%w: sd_hash does not match this presentation (disclosures added, removed or changed)", ErrKeyBinding)
	}
	aud, ok := kb.Aud.(string)
	if !ok || aud == "" || kb.Nonce == "" {
		return fmt.Errorf("%w: key binding JWT needs a string aud and a nonce", ErrKeyBinding)
	}
	if o.aud != "" && aud != o.aud {
		return fail(CheckAudience, fmt.Errorf("%w: %q, want %q", ErrAudience, aud, o.aud))
	}
	if o.nonce != "" && kb.Nonce != o.nonce {
		return fail(CheckNonce, fmt.Errorf("%w: the presentation was made for another request", ErrNonce))
	}
	iat, ok, err := numericDate(kb.IAT)
	if kb.IAT == "" || !ok || err != nil {
		return fmt.Errorf("%w: key binding JWT has no valid iat", ErrKeyBinding)
	}
	if now.Add(o.leeway).Before(iat) {
		return fail(CheckTime, fmt.Errorf("%w: key binding JWT iat %s is in the future", ErrNotYetValid, iat.UTC().Format(time.RFC3339)))
	}
	if now.Sub(iat) > o.maxKBAge+o.leeway {
		return fail(CheckTime, fmt.Errorf("%w: key binding JWT was made at %s (at most %s ago)", ErrExpired, iat.UTC().Format(time.RFC3339), o.maxKBAge))
	}
	res.KeyBound, res.Audience, res.Nonce, res.KBIssuedAt = true, aud, kb.Nonce, iat
	return nil
}
