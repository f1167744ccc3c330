package wimse

import "errors"

// Sentinel errors. Every error returned by this package wraps one of them, so
// that callers can branch with errors.Is.
var (
	// ErrMalformed: the token or identifier is not well-formed (bad JOSE
	// serialization, missing required claim, wrong claim type, too large).
	ErrMalformed = errors.New("malformed")
	// ErrUnsupportedAlgorithm: the JWS alg (or cnf.jwk alg) is not in the
	// allowed list; "none" and HMAC algorithms are never allowed.
	ErrUnsupportedAlgorithm = errors.New("unsupported algorithm")
	// ErrWrongType: the JOSE typ header is not the one this token kind needs.
	ErrWrongType = errors.New("wrong token type")
	// ErrUntrustedDomain: no bundle is configured for the trust domain of the
	// WIT's subject, or its issuer is not the bundle's issuer.
	ErrUntrustedDomain = errors.New("untrusted trust domain")
	// ErrKeyNotFound: the kid does not name a key in the trust domain's bundle.
	ErrKeyNotFound = errors.New("key not found")
	// ErrBadSignature: the signature does not verify under the selected key.
	ErrBadSignature = errors.New("bad signature")
	// ErrExpired: exp is in the past (beyond the leeway).
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf or iat is in the future (beyond the leeway).
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrAudience: a WIT carries an aud claim, or a WPT's aud is not one of the
	// audiences the receiver trusts.
	ErrAudience = errors.New("audience mismatch")
	// ErrProofMismatch: the WPT's wth does not hash the presented WIT, or it
	// was not signed with the WIT's confirmation key.
	ErrProofMismatch = errors.New("proof does not match identity token")
	// ErrReplay: a jti was seen before within its validity window.
	ErrReplay = errors.New("replayed token")
	// ErrReplayCacheFull: the replay cache is full of unexpired entries; the
	// token is refused rather than accepted unchecked.
	ErrReplayCacheFull = errors.New("replay cache full")
	// ErrReplayUnavailable: the shared record of used ids (a replicated
	// service's database) could not be read or written; the token is
	// refused (503, retry later).
	ErrReplayUnavailable = errors.New("replay state unavailable")
	// ErrReplayQuota: one caller (WIT subject) already holds its share of
	// the replay cache ([WithOwnerLimit]); its token is refused so that it
	// cannot fill the cache for everyone else.
	ErrReplayQuota = errors.New("too many unexpired proofs from one caller")
	// ErrInvalidIdentifier: the workload identifier breaks
	// draft-ietf-wimse-identifier or the SPIFFE ID rules.
	ErrInvalidIdentifier = errors.New("invalid workload identifier")
	// ErrMissingHeader: a request lacks the Workload-Identity-Token or
	// Workload-Proof-Token header, or carries it more than once.
	ErrMissingHeader = errors.New("missing or repeated WIMSE header")
)
