package transparency

import "errors"

// Errors returned by the service; the HTTP layer maps each to a status and
// an RFC 9290 problem title. Statement errors from pkg/scitt
// (ErrMalformed, ErrUnsupportedAlgorithm, ErrMissingClaims, ErrBadSignature,
// …) are passed through wrapped.
var (
	// ErrRejected: the registration policy rejected the statement.
	ErrRejected = errors.New("rejected by registration policy")
	// ErrUntrustedIssuer: the issuer (CWT iss) is not in the trust registry,
	// or the key is not trusted for it.
	ErrUntrustedIssuer = errors.New("untrusted issuer")
	// ErrUnknownKey: the statement's kid matches no trusted key.
	ErrUnknownKey = errors.New("unknown key")
	// ErrTooLarge: the statement exceeds the policy's size limit.
	ErrTooLarge = errors.New("statement too large")
	// ErrNotFound: no registration has this entry id.
	ErrNotFound = errors.New("entry not found")
	// ErrPending: the entry is registered but no published checkpoint covers
	// it yet; retry later.
	ErrPending = errors.New("registration pending")
	// ErrOverloaded: the service sheds load; retry later.
	ErrOverloaded = errors.New("service overloaded")
	// ErrBadRange: a consistency request names tree sizes the log cannot
	// prove.
	ErrBadRange = errors.New("bad tree size range")
	// ErrStorageFull: the statement could not be stored because the storage
	// is full (it wraps storage.ErrNoSpace too); retry later.
	ErrStorageFull = errors.New("storage full")
	// ErrAppendFailing: the statement is stored durably but appending it to
	// the log keeps failing; the service retries until it succeeds.
	ErrAppendFailing = errors.New("log append failing")
	// ErrStorageBusy: the storage did not answer within the time a request
	// may wait (a saturated database connection pool, a slow object store);
	// retry later.
	ErrStorageBusy = errors.New("storage busy")
)
