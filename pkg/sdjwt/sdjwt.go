package sdjwt

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/trustfabric/trustfabric/internal/jsonlimit"
)

// SDJWT is a parsed SD-JWT or SD-JWT+KB. Its parts keep the exact encoded
// strings that were received: digests and sd_hash are computed over them.
type SDJWT struct {
	// IssuerJWT is the Issuer-signed JWT in compact form.
	IssuerJWT   string
	Disclosures []*Disclosure
	// KeyBinding is the KB-JWT in compact form; empty for a plain SD-JWT.
	KeyBinding string

	// The JWTs as Parse decoded them (reused by Verify while the strings
	// are unchanged).
	issuerParts, kbParts *jwtParts
	issuerRaw, kbRaw     string
}

// Parse reads the compact serialization (RFC 9901 §4): the Issuer-signed
// JWT, each Disclosure followed by "~", and an optional KB-JWT. It checks
// the form only; Verify checks the contents.
func Parse(s string) (*SDJWT, error) {
	if len(s) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrMalformed, len(s), MaxSize)
	}
	s = strings.TrimSpace(s)
	parts := strings.Split(s, "~")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%w: no \"~\" separator: an SD-JWT is <JWT>~<disclosures>~[<KB-JWT>]", ErrMalformed)
	}
	if len(parts)-2 > MaxDisclosures {
		return nil, fmt.Errorf("%w: %d disclosures (at most %d)", ErrMalformed, len(parts)-2, MaxDisclosures)
	}
	sd := &SDJWT{IssuerJWT: parts[0], KeyBinding: parts[len(parts)-1], issuerRaw: parts[0], kbRaw: parts[len(parts)-1]}
	var err error
	if sd.issuerParts, _, err = splitJWT(sd.IssuerJWT); err != nil {
		return nil, fmt.Errorf("issuer-signed JWT: %w", err)
	}
	if sd.KeyBinding != "" {
		if sd.kbParts, _, err = splitJWT(sd.KeyBinding); err != nil {
			return nil, fmt.Errorf("key binding JWT: %w", err)
		}
	}
	for i, p := range parts[1 : len(parts)-1] {
		d, err := ParseDisclosure(p)
		if err != nil {
			return nil, fmt.Errorf("disclosure %d: %w", i+1, err)
		}
		sd.Disclosures = append(sd.Disclosures, d)
	}
	return sd, nil
}

// ParseJSON reads the JWS JSON serialization of §8: flattened
// ({"protected","payload","signature","header":{"disclosures",…}}) or
// general (one entry in "signatures"; the disclosures and kb_jwt in its
// unprotected header, §8.1).
func ParseJSON(b []byte) (*SDJWT, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrMalformed, len(b), MaxSize)
	}
	if err := jsonlimit.CheckDepth(b, MaxDepth); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	type sig struct {
		Protected string `json:"protected"`
		Signature string `json:"signature"`
		Header    struct {
			Disclosures []string `json:"disclosures"`
			KBJWT       string   `json:"kb_jwt"`
		} `json:"header"`
	}
	var doc struct {
		Payload string `json:"payload"`
		sig
		Signatures []sig `json:"signatures"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: JSON serialization: %w", ErrMalformed, err)
	}
	s := doc.sig
	if len(doc.Signatures) > 0 {
		if doc.Protected != "" || doc.Signature != "" {
			return nil, fmt.Errorf("%w: both flattened and general JSON serialization members", ErrMalformed)
		}
		// Only the first signature's header may carry disclosures (§8.1);
		// the first signature is the one verified.
		s = doc.Signatures[0]
		for _, o := range doc.Signatures[1:] {
			if len(o.Header.Disclosures) > 0 || o.Header.KBJWT != "" {
				return nil, fmt.Errorf("%w: disclosures or kb_jwt outside the first signature's header", ErrMalformed)
			}
		}
	}
	if doc.Payload == "" || s.Protected == "" || s.Signature == "" {
		return nil, fmt.Errorf("%w: JSON serialization lacks payload, protected or signature", ErrMalformed)
	}
	compact := s.Protected + "." + doc.Payload + "." + s.Signature + "~"
	for _, d := range s.Header.Disclosures {
		compact += d + "~"
	}
	return Parse(compact + s.Header.KBJWT)
}

// jwt returns the decoded JWT s, from the cache when it is the string
// that was parsed.
func jwt(cached *jwtParts, s, parsed string) (*jwtParts, error) {
	if cached != nil && s == parsed {
		return cached, nil
	}
	j, _, err := splitJWT(s)
	return j, err
}

// String returns the compact serialization.
func (s *SDJWT) String() string {
	return s.withoutKB() + s.KeyBinding
}

// withoutKB is the SD-JWT part: the input of sd_hash (§4.3.1).
func (s *SDJWT) withoutKB() string {
	var b strings.Builder
	b.WriteString(s.IssuerJWT)
	b.WriteByte('~')
	for _, d := range s.Disclosures {
		b.WriteString(d.Raw)
		b.WriteByte('~')
	}
	return b.String()
}

// SDHash returns the sd_hash of the SD-JWT part of this presentation.
func (s *SDJWT) SDHash() string { return digest(s.withoutKB()) }

// jwtParts is a decoded compact JWS.
type jwtParts struct {
	header  jwsHeader
	payload []byte
	tbs     []byte
	sig     []byte
}

// jwsHeader holds the header parameters this package reads; others are
// ignored, except crit, which is refused.
type jwsHeader struct {
	Alg  string          `json:"alg"`
	Typ  string          `json:"typ"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// splitJWT decodes a compact JWS: three base64url parts, a JSON object
// header and a payload within the limits.
func splitJWT(s string) (*jwtParts, []string, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, nil, fmt.Errorf("%w: a compact JWS has 3 parts, not %d", ErrMalformed, len(parts))
	}
	hb, err := b64.Strict().DecodeString(parts[0])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	pb, err := b64.Strict().DecodeString(parts[1])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	sig, err := b64.Strict().DecodeString(parts[2])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	if err := jsonlimit.CheckDepth(hb, MaxDepth); err != nil {
		return nil, nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if err := jsonlimit.CheckDepth(pb, MaxDepth); err != nil {
		return nil, nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	j := &jwtParts{payload: pb, sig: sig, tbs: []byte(parts[0] + "." + parts[1])}
	if len(hb) == 0 || hb[0] != '{' {
		return nil, nil, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	if err := json.Unmarshal(hb, &j.header); err != nil {
		return nil, nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	return j, parts, nil
}
