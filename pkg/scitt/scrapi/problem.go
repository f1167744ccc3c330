package scrapi

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Media types used by SCRAPI (draft-ietf-scitt-scrapi §2) and RFC 9290.
const (
	MediaTypeCOSE           = "application/cose"
	MediaTypeStatement      = "application/scitt-statement+cose"
	MediaTypeReceipt        = "application/scitt-receipt+cose"
	MediaTypeCBOR           = "application/cbor"
	MediaTypeProblemDetails = "application/concise-problem-details+cbor"
)

// Concise Problem Details keys (RFC 9290 §2). response-code (-4) is a CoAP
// response code (one byte, class×32+detail); SCRAPI runs over HTTP, so it is
// never written, and ignored when read.
const (
	problemTitle  = -1
	problemDetail = -2
)

// MaxProblemSize bounds a problem-details body a client will read.
const MaxProblemSize = 64 << 10

// Problem is an RFC 9290 Concise Problem Details body. It is also an error,
// returned by the client for 4xx/5xx answers.
type Problem struct {
	Title  string
	Detail string
	// Status is the HTTP status the problem came with. It is not part of the
	// CBOR body (RFC 9290's response-code is a CoAP code, not an HTTP
	// status): the client sets it from the response.
	Status int
}

// Error implements error.
func (p *Problem) Error() string {
	if p.Detail == "" {
		return fmt.Sprintf("transparency service: %d %s", p.Status, p.Title)
	}
	return fmt.Sprintf("transparency service: %d %s: %s", p.Status, p.Title, p.Detail)
}

var problemEnc = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

var problemDec = func() cbor.DecMode {
	dm, err := cbor.DecOptions{MaxNestedLevels: 4, MaxMapPairs: 64, MaxArrayElements: 64, DupMapKey: cbor.DupMapKeyEnforcedAPF}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// MarshalCBOR encodes the problem as a CBOR map with integer keys: title
// (-1) and detail (-2). Status is not encoded (see [Problem.Status]).
func (p *Problem) MarshalCBOR() ([]byte, error) {
	m := map[int]any{problemTitle: p.Title}
	if p.Detail != "" {
		m[problemDetail] = p.Detail
	}
	return problemEnc.Marshal(m)
}

// ErrBadProblem is returned when a problem-details body cannot be decoded.
var ErrBadProblem = errors.New("malformed concise problem details")

// ParseProblem decodes an RFC 9290 body: title and detail must be text when
// present; every other key (instance, response-code, base-uri, custom
// entries) is ignored. Status is left 0.
func ParseProblem(b []byte) (*Problem, error) {
	if len(b) > MaxProblemSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadProblem, len(b))
	}
	var m map[int]cbor.RawMessage
	if err := problemDec.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadProblem, err)
	}
	p := &Problem{}
	if raw, ok := m[problemTitle]; ok {
		if err := problemDec.Unmarshal(raw, &p.Title); err != nil {
			return nil, fmt.Errorf("%w: title: %w", ErrBadProblem, err)
		}
	}
	if raw, ok := m[problemDetail]; ok {
		if err := problemDec.Unmarshal(raw, &p.Detail); err != nil {
			return nil, fmt.Errorf("%w: detail: %w", ErrBadProblem, err)
		}
	}
	return p, nil
}
