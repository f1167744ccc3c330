// Package sdjwt implements Selective Disclosure for JSON Web Tokens
// ([RFC 9901]): issuing an SD-JWT whose claims are hidden behind salted
// digests, presenting it with a chosen subset of its Disclosures and a Key
// Binding JWT, and verifying a presentation.
//
// It also carries the conventions of SD-JWT-based Verifiable Credentials
// ([draft-ietf-oauth-sd-jwt-vc]): the typ header dc+sd-jwt ([TypeVC]) and the
// vct, iss, iat, exp and cnf claims, which the credential layer
// (pkg/credential) fills in.
//
// # Format
//
// An SD-JWT in the compact serialization (RFC 9901 §4) is
//
//	<Issuer-signed JWT>~<Disclosure 1>~…~<Disclosure N>~[<KB-JWT>]
//
// A Disclosure is the base64url encoding of a JSON array [salt, name, value]
// (an object property) or [salt, value] (an array element); its digest, the
// base64url SHA-256 of the encoded Disclosure, is listed in an "_sd" array
// (properties) or replaces the element as {"...": digest} (arrays). Only
// sha-256 is supported for "_sd_alg" (the default of §4.1.1).
// [ParseJSON] reads the JWS JSON serialization of §8 (flattened or general).
//
// # Verification
//
// [Verify] follows §7: the Issuer-signed JWT's signature with a pinned key
// (pkg/keys: the one algorithm table, kid matching, no "none"); every
// Disclosure's digest found exactly once in the payload or in another
// Disclosure; no digest listed twice; no Disclosure presented twice; no
// disclosed name that collides with a plain claim, or is "_sd" or "...";
// the Key Binding JWT (typ kb+jwt) signed by the key in cnf, its sd_hash
// over exactly this presentation, its aud and nonce as expected and its iat
// recent; and exp/nbf/iat of the credential. Each failure wraps one of the
// Err* sentinels and is reported as a [*VerifyError] naming the check.
//
// # Limits
//
// Parsers bound the input before decoding: [MaxSize] bytes in all,
// [MaxDisclosures] Disclosures, [MaxDepth] levels of JSON nesting, and
// [MaxDisclosureSize] bytes per Disclosure.
//
// [RFC 9901]: https://www.rfc-editor.org/rfc/rfc9901
// [draft-ietf-oauth-sd-jwt-vc]: https://datatracker.ietf.org/doc/draft-ietf-oauth-sd-jwt-vc/
package sdjwt

import "errors"

// Media types and JOSE typ values.
const (
	// TypeVC is the typ of an SD-JWT VC (draft-ietf-oauth-sd-jwt-vc §3.2.1).
	TypeVC = "dc+sd-jwt"
	// TypeKB is the typ of a Key Binding JWT (RFC 9901 §4.3).
	TypeKB = "kb+jwt"
	// MediaTypeVC is the media type of an SD-JWT VC.
	MediaTypeVC = "application/dc+sd-jwt"
	// HashAlg is the only _sd_alg supported (RFC 9901 §4.1.1's default).
	HashAlg = "sha-256"
)

// Limits on untrusted input.
const (
	MaxSize           = 1 << 20
	MaxDisclosures    = 1024
	MaxDepth          = 32
	MaxDisclosureSize = 64 << 10
)

// Sentinels wrapped by parse and verification errors; callers branch on
// them with errors.Is.
var (
	// ErrMalformed: the input is not a well-formed SD-JWT, Disclosure or JWT,
	// or exceeds a limit.
	ErrMalformed = errors.New("malformed SD-JWT")
	// ErrSignature: the Issuer-signed JWT does not verify with any pinned key.
	ErrSignature = errors.New("issuer signature does not verify with a pinned key")
	// ErrDisclosure: a Disclosure is not referenced by the payload (tampered,
	// or from another credential), or is presented twice, or a digest is
	// listed twice.
	ErrDisclosure = errors.New("disclosures do not match the signed digests")
	// ErrCollision: a disclosed claim name collides with another claim, or is
	// a reserved name.
	ErrCollision = errors.New("disclosed claim collides")
	// ErrKeyBinding: the Key Binding JWT is missing, not signed by the cnf
	// key, or not bound to this presentation.
	ErrKeyBinding = errors.New("key binding does not verify")
	// ErrAudience and ErrNonce: the Key Binding JWT is for another verifier
	// or another request.
	ErrAudience = errors.New("key binding is for another audience")
	ErrNonce    = errors.New("key binding has another nonce")
	// ErrExpired and ErrNotYetValid: the time checks.
	ErrExpired     = errors.New("expired")
	ErrNotYetValid = errors.New("not yet valid")
	// ErrType: the typ header is not one the verifier accepts.
	ErrType = errors.New("unexpected typ")
)

// Check names reported by [VerifyError].
const (
	CheckFormat      = "format"
	CheckSignature   = "issuer-signature"
	CheckDisclosures = "disclosures"
	CheckKeyBinding  = "key-binding"
	CheckAudience    = "audience"
	CheckNonce       = "nonce"
	CheckTime        = "time"
	CheckType        = "type"
)

// VerifyError names the check that failed.
type VerifyError struct {
	Check string
	Err   error
}

func (e *VerifyError) Error() string { return e.Check + ": " + e.Err.Error() }
func (e *VerifyError) Unwrap() error { return e.Err }

func fail(check string, err error) error { return &VerifyError{Check: check, Err: err} }
