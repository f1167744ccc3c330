package wimse

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// Lifetimes of proof tokens (wpt §3.1: "short").
const (
	// DefaultProofLifetime is the exp − iat of WPTs minted by MintWPT.
	DefaultProofLifetime = time.Minute
	// MaxProofLifetime is the furthest in the future a WPT's exp may be.
	MaxProofLifetime = 5 * time.Minute
	// DefaultProofLeeway is the clock skew tolerated on a WPT's exp, nbf and
	// iat: proofs are minted for the request at hand, so a WPT past its exp
	// by more than a few seconds is refused.
	DefaultProofLeeway = 5 * time.Second
	// MaxProofLeeway caps the configurable WPT leeway.
	MaxProofLeeway = 10 * time.Second
)

// WPT is a verified Workload Proof Token.
type WPT struct {
	Raw       string
	Audience  string
	IssuedAt  time.Time
	Expiry    time.Time
	JTI       string
	WITHash   string // wth
	Algorithm jose.SignatureAlgorithm
}

// MintWPT signs a proof token for a request to aud with the workload key whose
// public half is the WIT's cnf.jwk: typ "wpt+jwt", alg = the key's algorithm,
// claims aud, iat, exp (now + lifetime, DefaultProofLifetime when zero, capped
// at MaxProofLifetime), a random 128-bit jti and wth.
func MintWPT(key *keys.PrivateKey, wit, aud string, lifetime time.Duration) (string, error) {
	if aud == "" {
		return "", fmt.Errorf("%w: WPT audience is required", ErrMalformed)
	}
	if lifetime <= 0 {
		lifetime = DefaultProofLifetime
	}
	lifetime = min(lifetime, MaxProofLifetime)
	now := time.Now()
	s, err := newJOSESigner(key, TypeWPT, false)
	if err != nil {
		return "", err
	}
	claims := map[string]any{
		"aud": aud,
		"iat": now.Unix(),
		"exp": now.Add(lifetime).Unix(),
		"jti": randomID(),
		"wth": witHash(wit),
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign WPT: %w", err)
	}
	return tok, nil
}

func witHash(wit string) string {
	sum := sha256.Sum256([]byte(wit))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ProofPolicy is what a receiver requires of a WPT.
type ProofPolicy struct {
	// Audiences are the aud values this receiver accepts, from trusted
	// configuration only (never from Host or X-Forwarded-Host).
	Audiences []string
	// Replay remembers jti values, per WIT subject (see [WithOwnerLimit]);
	// nil disables the replay check (not recommended).
	Replay Replayer
	// Leeway is the clock skew tolerated on exp, nbf and iat; zero means
	// DefaultProofLeeway; capped at MaxProofLeeway. A WithLeeway option
	// given to VerifyWPT takes precedence (also capped).
	Leeway time.Duration
}

type wptClaims struct {
	jwt.Claims
	WTH string          `json:"wth"`
	OTH json.RawMessage `json:"oth"`
}

// VerifyWPT checks a WPT against the verified WIT it accompanies
// (draft-ietf-wimse-wpt-02 §3.3): alg equals cnf.jwk.alg, the signature
// verifies under cnf.jwk, typ, aud is one of p.Audiences, exp present and not
// too far ahead, wth hashes the WIT, jti single use. An oth claim is refused
// since this receiver binds no other tokens.
func VerifyWPT(token string, wit *WIT, p ProofPolicy, opts ...VerifyOption) (*WPT, error) {
	o, err := newVerifyOptions(opts)
	if err != nil {
		return nil, err
	}
	switch {
	case o.leewaySet:
		o.leeway = min(o.leeway, MaxProofLeeway)
	case p.Leeway > 0:
		o.leeway = min(p.Leeway, MaxProofLeeway)
	default:
		o.leeway = DefaultProofLeeway
	}
	alg := jose.SignatureAlgorithm(wit.Key.Algorithm)
	tok, hdr, err := parseCompact(token, []jose.SignatureAlgorithm{alg})
	if err != nil {
		return nil, fmt.Errorf("WPT: %w", err)
	}
	if typ := headerType(hdr); typ != TypeWPT && typ != "application/"+TypeWPT {
		return nil, fmt.Errorf("WPT: %w: typ %q, want %q", ErrWrongType, typ, TypeWPT)
	}
	var c wptClaims
	if err := tok.Claims(wit.Key.Key, &c); err != nil {
		return nil, fmt.Errorf("WPT: %w: not signed by the WIT's confirmation key: %w", ErrProofMismatch, err)
	}
	if c.Expiry == nil || c.ID == "" || c.WTH == "" || len(c.Audience) == 0 {
		return nil, fmt.Errorf("WPT: %w: aud, exp, jti and wth are required", ErrMalformed)
	}
	if len(c.OTH) > 0 {
		return nil, fmt.Errorf("WPT: %w: oth names tokens this receiver does not accept", ErrMalformed)
	}
	if len(c.Audience) != 1 || !slices.Contains(p.Audiences, c.Audience[0]) {
		return nil, fmt.Errorf("WPT: %w: aud %q", ErrAudience, []string(c.Audience))
	}
	if err := checkTimes(&c.Claims, o); err != nil {
		return nil, fmt.Errorf("WPT: %w", err)
	}
	if c.Expiry.Time().After(o.now.Add(MaxProofLifetime + o.leeway)) {
		return nil, fmt.Errorf("WPT: %w: exp is more than %s ahead", ErrMalformed, MaxProofLifetime)
	}
	if subtle.ConstantTimeCompare([]byte(c.WTH), []byte(witHash(wit.Raw))) != 1 {
		return nil, fmt.Errorf("WPT: %w: wth does not hash the presented WIT", ErrProofMismatch)
	}
	if p.Replay != nil {
		if len(c.ID) > MaxJTILen {
			return nil, fmt.Errorf("WPT: %w: jti longer than %d bytes", ErrMalformed, MaxJTILen)
		}
		key := sha256.Sum256([]byte(wit.ID.String() + "\x00" + c.ID))
		if err := p.Replay.UseFor(wit.ID.String(), base64.RawURLEncoding.EncodeToString(key[:]), c.Expiry.Time().Add(o.leeway), o.now); err != nil {
			return nil, fmt.Errorf("WPT: %w", err)
		}
	}
	return &WPT{
		Raw: token, Audience: c.Audience[0], IssuedAt: numericTime(c.IssuedAt), Expiry: c.Expiry.Time(),
		JTI: c.ID, WITHash: c.WTH, Algorithm: alg,
	}, nil
}
