package scitt

import (
	"errors"
	"fmt"
	"strings"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/keys"
)

// Sentinel errors. Every verification or parse failure wraps at least one of
// these, so callers can branch with errors.Is.
var (
	// ErrMalformed: the bytes are not a well-formed, strictly encoded object
	// (bad CBOR, wrong tag, trailing bytes, duplicate keys, limits exceeded).
	ErrMalformed = cosewire.ErrMalformed
	// ErrUnsupportedAlgorithm: the signature algorithm is not on the allow-list
	// (ES256, ES384, ES512, PS256, EdDSA) or does not fit the key.
	ErrUnsupportedAlgorithm = keys.ErrUnsupportedAlgorithm
	// ErrUnsupportedVDS: the receipt's verifiable data structure is not
	// RFC9162_SHA256 (vds 1).
	ErrUnsupportedVDS = errors.New("unsupported verifiable data structure")
	// ErrBadSignature: the signature does not verify under any candidate key.
	ErrBadSignature = keys.ErrBadSignature
	// ErrKeyNotFound: no key of the given set can verify this object.
	ErrKeyNotFound = keys.ErrKeyNotFound
	// ErrProofMismatch: the inclusion or consistency proof is invalid: index
	// out of range, wrong path length, or a root that the signature does not
	// cover.
	ErrProofMismatch = errors.New("proof mismatch")
	// ErrWrongReceiptKind: the receipt's signed kind (LabelReceiptKind) is
	// not the one required: a consistency receipt where an inclusion receipt
	// is required, or the reverse. It comes wrapped with ErrProofMismatch.
	ErrWrongReceiptKind = errors.New("wrong receipt kind")
	// ErrPayloadMismatch: the payload does not match the preimage, or a hash
	// envelope payload has the wrong length.
	ErrPayloadMismatch = errors.New("payload mismatch")
	// ErrHeaderPlacement: a header parameter is missing from, or forbidden in,
	// the header it was found in (RFC 9995 §2 placement rules).
	ErrHeaderPlacement = errors.New("header placement")
	// ErrMissingClaims: the CWT claims (label 15) or its iss/sub are missing.
	ErrMissingClaims = errors.New("missing CWT claims")
	// ErrCriticalHeader: the crit header parameter (label 2) names a header
	// parameter this implementation does not understand, or crit itself is
	// malformed, empty or not in the protected header (RFC 9052 §3.1).
	ErrCriticalHeader = errors.New("unknown critical header")
)

// Check is the outcome of one verification step.
type Check struct {
	// Name identifies the step, e.g. "statement.signature".
	Name string
	// OK reports whether the step passed.
	OK bool
	// Err says why the step failed; nil when OK.
	Err error
}

// Result lists the checks a verification ran, in order.
type Result struct {
	Checks []Check
}

// OK reports whether every check passed (and at least one ran).
func (r *Result) OK() bool {
	if r == nil || len(r.Checks) == 0 {
		return false
	}
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Err returns the first failure, or nil when every check passed.
func (r *Result) Err() error {
	if r == nil {
		return errors.New("no verification result")
	}
	for _, c := range r.Checks {
		if !c.OK {
			return &CheckError{Check: c.Name, Err: c.Err}
		}
	}
	return nil
}

// String renders one line per check.
func (r *Result) String() string {
	var b strings.Builder
	for _, c := range r.Checks {
		if c.OK {
			fmt.Fprintf(&b, "ok   %s\n", c.Name)
		} else {
			fmt.Fprintf(&b, "FAIL %s: %v\n", c.Name, c.Err)
		}
	}
	return b.String()
}

func (r *Result) pass(name string) { r.Checks = append(r.Checks, Check{Name: name, OK: true}) }

// fail records a failed check and returns the result with the error.
func (r *Result) fail(name string, err error) (*Result, error) {
	r.Checks = append(r.Checks, Check{Name: name, Err: err})
	return r, &CheckError{Check: name, Err: err}
}

// CheckError names the verification step that failed.
type CheckError struct {
	Check string
	Err   error
}

func (e *CheckError) Error() string { return e.Check + ": " + e.Err.Error() }
func (e *CheckError) Unwrap() error { return e.Err }
