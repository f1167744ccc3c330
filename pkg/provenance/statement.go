package provenance

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/trustfabric/trustfabric/internal/jsonlimit"
)

// Limits on user-supplied statements (they are untrusted bytes).
const (
	// MaxStatementSize is the largest statement or DSSE envelope accepted (the limit of
	// actions/attest for predicates).
	MaxStatementSize = 16 << 20
	// MaxDepth is the deepest JSON nesting accepted.
	MaxDepth = 64
)

// DSSEMediaType is the media type of a DSSE envelope.
const DSSEMediaType = "application/vnd.dsse.envelope.v1+json"

// Errors returned by [ParseStatement].
var (
	ErrMalformed = errors.New("malformed in-toto statement")
	ErrTooLarge  = errors.New("in-toto statement too large")
)

// Statement is a parsed in-toto statement, supplied by the user or produced by [Build].
// Raw holds the exact bytes given, which become the preimage unchanged.
type Statement struct {
	Raw []byte
	// MediaType is [MediaType] for a bare statement, [DSSEMediaType] for an envelope.
	MediaType     string
	Type          string
	PredicateType string
	Subjects      []Subject
}

type jsonStatement struct {
	Type          string          `json:"_type"`
	Subject       []jsonSubject   `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

type jsonSubject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

type dsseEnvelope struct {
	PayloadType string          `json:"payloadType"`
	Payload     *string         `json:"payload"`
	Signatures  json.RawMessage `json:"signatures"`
}

// ParseStatement parses an in-toto statement (JSON, Statement v1 or v0.1) or a DSSE
// envelope whose payload is one. It checks the shape (type, at least one subject with a
// well-formed digest, a predicate type) and never modifies b. Errors wrap [ErrMalformed]
// or [ErrTooLarge].
func ParseStatement(b []byte) (*Statement, error) {
	if len(b) > MaxStatementSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(b), MaxStatementSize)
	}
	if err := jsonlimit.CheckDepth(b, MaxDepth); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %w", ErrMalformed, err)
	}
	if _, ok := probe["payloadType"]; ok {
		var env dsseEnvelope
		if err := json.Unmarshal(b, &env); err != nil {
			return nil, fmt.Errorf("%w: DSSE envelope: %w", ErrMalformed, err)
		}
		if env.PayloadType != MediaType {
			return nil, fmt.Errorf("%w: DSSE payloadType is %q, want %q", ErrMalformed, env.PayloadType, MediaType)
		}
		if env.Payload == nil {
			return nil, fmt.Errorf("%w: DSSE envelope has no payload", ErrMalformed)
		}
		payload, err := base64.StdEncoding.DecodeString(*env.Payload)
		if err != nil {
			if payload, err = base64.URLEncoding.DecodeString(*env.Payload); err != nil {
				return nil, fmt.Errorf("%w: DSSE payload is not base64", ErrMalformed)
			}
		}
		s, err := parseBare(payload)
		if err != nil {
			return nil, fmt.Errorf("DSSE payload: %w", err)
		}
		s.Raw, s.MediaType = b, DSSEMediaType
		return s, nil
	}
	return parseBare(b)
}

func parseBare(b []byte) (*Statement, error) {
	if err := jsonlimit.CheckDepth(b, MaxDepth); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var js jsonStatement
	if err := json.Unmarshal(b, &js); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch js.Type {
	case StatementType, "https://in-toto.io/Statement/v0.1":
	default:
		return nil, fmt.Errorf("%w: _type is %q, want %q", ErrMalformed, js.Type, StatementType)
	}
	if js.PredicateType == "" {
		return nil, fmt.Errorf("%w: predicateType is missing", ErrMalformed)
	}
	if len(js.Subject) == 0 {
		return nil, fmt.Errorf("%w: no subject", ErrMalformed)
	}
	s := &Statement{Raw: b, MediaType: MediaType, Type: js.Type, PredicateType: js.PredicateType}
	for i, sub := range js.Subject {
		if err := checkDigestSet(sub.Digest); err != nil {
			return nil, fmt.Errorf("%w: subject %d: %w", ErrMalformed, i, err)
		}
		s.Subjects = append(s.Subjects, Subject(sub))
	}
	return s, nil
}

// hexLengths are the digest lengths (hex characters) of the algorithms the in-toto
// ResourceDescriptor spec lists with a fixed size.
var hexLengths = map[string]int{
	"sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128, "sha512_224": 56, "sha512_256": 64,
	"sha3_224": 56, "sha3_256": 64, "sha3_384": 96, "sha3_512": 128, "sha1": 40, "md5": 32,
	"gitCommit": -1, "gitTree": -1, "gitBlob": -1,
}

// checkDigestSet checks that a digest set is non-empty and that every known algorithm's
// value is lowercase hex of the right length (git object ids: 40 or 64).
func checkDigestSet(d map[string]string) error {
	if len(d) == 0 {
		return errors.New("empty digest set")
	}
	for alg, v := range d {
		n, known := hexLengths[alg]
		if !known {
			if v == "" {
				return fmt.Errorf("digest %s is empty", alg)
			}
			continue
		}
		if _, err := hex.DecodeString(v); err != nil || v != lower(v) {
			return fmt.Errorf("digest %s is not lowercase hex", alg)
		}
		if (n > 0 && len(v) != n) || (n < 0 && len(v) != 40 && len(v) != 64) {
			return fmt.Errorf("digest %s has %d hex characters", alg, len(v))
		}
	}
	return nil
}

func lower(s string) string { return string(bytes.ToLower([]byte(s))) }

// Covers reports whether the statement lists a subject with every digest of want.
func (s *Statement) Covers(want Subject) bool {
	for _, sub := range s.Subjects {
		match := len(want.Digest) > 0
		for alg, v := range want.Digest {
			if sub.Digest[alg] != v {
				match = false
			}
		}
		if match {
			return true
		}
	}
	return false
}
