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

// Concise Problem Details keys (RFC 9290 §2).
const (
	problemTitle        = -1
	problemDetail       = -2
	problemInstance     = -3
	problemResponseCode = -4
)

// MaxProblemSize bounds a problem-details body a client will read.
const MaxProblemSize = 64 << 10

// Problem is an RFC 9290 Concise Problem Details body. It is also an error,
// returned by the client for 4xx/5xx answers.
type Problem struct {
	Title  string
	Detail string
	// Status is the HTTP status the problem came with (RFC 9290 response-code).
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

// MarshalCBOR encodes the problem as a CBOR map with integer keys.
func (p *Problem) MarshalCBOR() ([]byte, error) {
	m := map[int]any{problemTitle: p.Title}
	if p.Detail != "" {
		m[problemDetail] = p.Detail
	}
	if p.Status != 0 {
		m[problemResponseCode] = p.Status
	}
	return problemEnc.Marshal(m)
}

// ErrBadProblem is returned when a problem-details body cannot be decoded.
var ErrBadProblem = errors.New("malformed concise problem details")

// ParseProblem decodes an RFC 9290 body. Unknown keys are ignored.
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
	if raw, ok := m[problemResponseCode]; ok {
		if err := problemDec.Unmarshal(raw, &p.Status); err != nil {
			return nil, fmt.Errorf("%w: response-code: %w", ErrBadProblem, err)
		}
	}
	_ = problemInstance
	return p, nil
}
