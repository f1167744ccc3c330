package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// DPoP proof limits (RFC 9449 §4.3, §11.1).
const (
	// MaxDPoPAge is how old a proof's iat may be.
	MaxDPoPAge = 5 * time.Minute
	// MaxDPoPSize bounds the DPoP header.
	MaxDPoPSize = 8 << 10
)

type dpopClaims struct {
	jwt.Claims
	HTM string `json:"htm"`
	HTU string `json:"htu"`
}

// dpopProof is a verified proof's replay-cache entry.
type dpopProof struct {
	id      string
	expires time.Time
}

// use records the proof's jti as used; an error wraps ErrDPoP and
// wimse.ErrReplay or wimse.ErrReplayCacheFull.
func (p *dpopProof) use(replay wimse.Replayer, now time.Time) error {
	if err := replay.UseFor("", p.id, p.expires, now); err != nil {
		return fmt.Errorf("%w: %w", ErrDPoP, err)
	}
	return nil
}

// verifyDPoP checks a DPoP proof (RFC 9449 §4.3) for a POST to htu and returns
// the public key it proves, with alg set to the proof's alg: typ dpop+jwt,
// an asymmetric alg allowed for WIT keys, a public jwk header that verifies
// the signature, htm POST, htu equal to the token endpoint (from
// configuration, compared without query and fragment), iat within the window,
// and a jti. It does not record the jti: the caller does (dpopProof.use)
// once the CI token is verified, so that proofs sent with forged or garbage
// CI tokens never fill the replay cache.
func verifyDPoP(proof, htu string, now time.Time) (jose.JSONWebKey, *dpopProof, error) {
	var none jose.JSONWebKey
	if len(proof) > MaxDPoPSize {
		return none, nil, fmt.Errorf("%w: %w: %d bytes", ErrDPoP, ErrTooLarge, len(proof))
	}
	tok, err := jwt.ParseSigned(proof, wimse.Algorithms)
	if err != nil {
		if alg := peekAlg(proof); alg != "" && !slices.Contains(wimse.Algorithms, jose.SignatureAlgorithm(alg)) {
			return none, nil, fmt.Errorf("%w: %w: %q", ErrDPoP, wimse.ErrUnsupportedAlgorithm, alg)
		}
		return none, nil, fmt.Errorf("%w: %w: %w", ErrDPoP, wimse.ErrMalformed, err)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != wimse.TypeDPoP {
		return none, nil, fmt.Errorf("%w: %w: typ %q", ErrDPoP, wimse.ErrWrongType, typ)
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() || !h.JSONWebKey.Valid() {
		return none, nil, fmt.Errorf("%w: %w: the header needs a public jwk", ErrDPoP, wimse.ErrMalformed)
	}
	key := *h.JSONWebKey
	var c dpopClaims
	if err := tok.Claims(key.Key, &c); err != nil {
		return none, nil, fmt.Errorf("%w: %w: %w", ErrDPoP, wimse.ErrBadSignature, err)
	}
	if c.HTM != "POST" {
		return none, nil, fmt.Errorf("%w: htm %q, want POST", ErrDPoP, c.HTM)
	}
	if !sameURL(c.HTU, htu) {
		return none, nil, fmt.Errorf("%w: %w: htu %q is not this token endpoint", ErrDPoP, wimse.ErrAudience, c.HTU)
	}
	if c.IssuedAt == nil || c.ID == "" {
		return none, nil, fmt.Errorf("%w: %w: iat and jti are required", ErrDPoP, wimse.ErrMalformed)
	}
	iat := c.IssuedAt.Time()
	switch {
	case iat.After(now.Add(CITokenLeeway)):
		return none, nil, fmt.Errorf("%w: %w: iat is in the future", ErrDPoP, wimse.ErrNotYetValid)
	case now.Sub(iat) > MaxDPoPAge:
		return none, nil, fmt.Errorf("%w: %w: iat is older than %s", ErrDPoP, wimse.ErrExpired, MaxDPoPAge)
	}
	if len(c.ID) > wimse.MaxJTILen {
		return none, nil, fmt.Errorf("%w: %w: jti longer than %d bytes", ErrDPoP, wimse.ErrMalformed, wimse.MaxJTILen)
	}
	id := sha256.Sum256([]byte(c.ID))
	key.Algorithm = h.Algorithm
	key.KeyID, key.Use = "", ""
	return key, &dpopProof{id: hex.EncodeToString(id[:]), expires: iat.Add(MaxDPoPAge + CITokenLeeway)}, nil
}

// sameURL compares two URLs without query and fragment, scheme and host
// case-insensitively (RFC 9449 §4.3 step 9).
func sameURL(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return false
	}
	norm := func(u *url.URL) string {
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		return fmt.Sprintf("%s://%s%s", lower(u.Scheme), lower(u.Host), p)
	}
	return norm(ua) == norm(ub)
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}
