// Package sdcwt implements Selective Disclosure CBOR Web Tokens
// ([draft-ietf-spice-sd-cwt], the editor's copy of the latest draft): an
// SD-CWT is a COSE_Sign1 CWT whose redacted claims are replaced by salted
// digests, with the Salted Disclosed Claims in the unprotected sd_claims
// header; a presentation is an SD-KBT, a COSE_Sign1 signed by the holder's
// cnf key that carries the SD-CWT (with the chosen disclosures) in its
// protected kcwt header.
//
// # Wire format (draft labels)
//
//   - protected header: alg (1), typ (16) = 293, sd_alg (170) = -16 (SHA-256,
//     the only one supported), kid (4)
//   - unprotected header: sd_claims (17) = [+ bstr .cbor [salt, value, key]
//     / [salt, value] / [salt]], omitted when empty (an empty array is
//     invalid)
//   - payload: redacted claim keys under the simple(59) key as an array of
//     digests; redacted array elements as 60(digest); cnf (8) = {1: COSE_Key}
//   - SD-KBT: protected {alg, typ (16) = 294, kcwt (13) = the SD-CWT},
//     payload {aud (3), iat (6), cnonce (39)}
//
// The digest is SHA-256 over the disclosure's bstr encoding (see
// Disclosure.Digest for why).
// CBOR is decoded strictly (internal/cosewire: definite lengths, no
// duplicate keys, nesting and size limits); signatures are checked with
// pinned keys through pkg/keys.
//
// [draft-ietf-spice-sd-cwt]: https://datatracker.ietf.org/doc/draft-ietf-spice-sd-cwt/
package sdcwt

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/trustfabric/trustfabric/internal/cosewire"
)

// Header labels, claim keys and types of the draft.
const (
	HeaderAlg      = 1
	HeaderKID      = 4
	HeaderKCWT     = 13
	HeaderTyp      = 16
	HeaderSDClaims = 17
	HeaderSDAlg    = 170

	TypeSDCWT = 293 // application/sd-cwt
	TypeKBT   = 294 // application/kb+cwt

	ClaimIss    = 1
	ClaimSub    = 2
	ClaimAud    = 3
	ClaimExp    = 4
	ClaimNbf    = 5
	ClaimIat    = 6
	ClaimCti    = 7
	ClaimCnf    = 8
	ClaimVct    = 11
	ClaimCnonce = 39

	// AlgSHA256 is the COSE algorithm of SHA-256, the sd_alg supported.
	AlgSHA256 = -16
	// TagRedactedElement wraps the digest of a redacted array element.
	TagRedactedElement = 60
)

// RedactedClaimKeys is the map key of the digests of redacted claims.
const RedactedClaimKeys = cbor.SimpleValue(59)

// Limits on untrusted input.
const (
	MaxSize        = 1 << 20
	MaxDisclosures = 1024
)

// Sentinels, as in pkg/sdjwt.
var (
	ErrMalformed   = errors.New("malformed SD-CWT")
	ErrSignature   = errors.New("issuer signature does not verify with a pinned key")
	ErrDisclosure  = errors.New("disclosures do not match the signed digests")
	ErrCollision   = errors.New("disclosed claim collides")
	ErrKeyBinding  = errors.New("key binding does not verify")
	ErrAudience    = errors.New("key binding is for another audience")
	ErrNonce       = errors.New("key binding has another nonce")
	ErrExpired     = errors.New("expired")
	ErrNotYetValid = errors.New("not yet valid")
	ErrType        = errors.New("unexpected typ")
	ErrNoSuchClaim = errors.New("no such claim in the credential")
)

// Check names (the same as pkg/sdjwt's).
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

// SD marks a claim value, or an array element, as redacted (selectively
// disclosable).
type SD struct{ Value any }

// Disclosure is one Salted Disclosed Claim. Raw is the bstr content as
// issued; the digest is over it.
type Disclosure struct {
	Raw  []byte
	Salt []byte
	// Key is the claim key (int64 or string) of a claim disclosure.
	Key       any
	Value     any
	IsElement bool
	IsDecoy   bool
}

// Digest returns the Redacted Claim Hash of the disclosure: SHA-256 over
// the disclosure as it is carried in sd_claims, a CBOR byte string (its
// header included). This is what the draft's example tokens and its
// reference script (examples/sd-cwt.py: sd_hash(cbor2.dumps(disclosure)))
// do; the draft's separate first-blinded-hash example hashes the content
// only and matches neither token (testdata/draft, TestDraftDisclosureHash).
func (d *Disclosure) Digest() []byte {
	h := sha256.Sum256(cosewire.AppendBstr(nil, d.Raw))
	return h[:]
}

// ParseDisclosure decodes a Salted Disclosed Claim strictly.
func ParseDisclosure(b []byte) (*Disclosure, error) {
	var arr []any
	if err := cosewire.Dec.Unmarshal(b, &arr); err != nil {
		return nil, fmt.Errorf("%w: disclosure: %w", ErrMalformed, err)
	}
	d := &Disclosure{Raw: b}
	if len(arr) < 1 || len(arr) > 3 {
		return nil, fmt.Errorf("%w: disclosure has %d elements", ErrMalformed, len(arr))
	}
	salt, ok := arr[0].([]byte)
	if !ok || len(salt) != 16 {
		return nil, fmt.Errorf("%w: disclosure salt is not 16 bytes", ErrMalformed)
	}
	d.Salt = salt
	switch len(arr) {
	case 1:
		d.IsDecoy = true
	case 2:
		d.IsElement, d.Value = true, arr[1]
	case 3:
		switch k := arr[2].(type) {
		case int64, string:
			d.Key = k
		default:
			return nil, fmt.Errorf("%w: disclosure claim key is not an integer or text", ErrMalformed)
		}
		d.Value = arr[1]
	}
	return d, nil
}
