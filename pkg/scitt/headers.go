package scitt

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/cosewire"
)

// Header labels used by SCITT objects.
const (
	LabelAlg                 = 1   // RFC 9052
	LabelCrit                = 2   // RFC 9052
	LabelContentType         = 3   // RFC 9052
	LabelKID                 = 4   // RFC 9052
	LabelCWTClaims           = 15  // RFC 9597
	LabelX5Chain             = 33  // RFC 9360
	LabelX5T                 = 34  // RFC 9360
	LabelPayloadHashAlg      = 258 // RFC 9995
	LabelPreimageContentType = 259 // RFC 9995
	LabelPayloadLocation     = 260 // RFC 9995
	LabelReceipts            = 394 // RFC 9942
	LabelVDS                 = 395 // RFC 9942
	LabelVDP                 = 396 // RFC 9942
	// LabelWIT is the text label carrying a WIMSE Workload Identity Token
	// (design §2.1).
	LabelWIT = "wit"
)

// CWT claim keys (RFC 8392).
const (
	claimIss = 1
	claimSub = 2
	claimIat = 6
)

// SHA-256 as a COSE algorithm (RFC 9054), the payload hash of our envelopes.
const AlgSHA256 cose.Algorithm = -16

// Media types.
const (
	MediaTypeInToto    = "application/vnd.in-toto+json"
	MediaTypeOctets    = "application/octet-stream"
	MediaTypeStatement = "application/scitt-statement+cose"
	MediaTypeReceipt   = "application/scitt-receipt+cose"
)

// header is a decoded COSE header map: its entries in encoded order, keyed
// by int64 or string labels (no two alike: DecodeMap refuses duplicates),
// the values raw encodings aliasing the message. A slice, not a Go map:
// headers have a handful of entries, and a map per header was the largest
// allocation of parsing a statement.
type header []cosewire.Entry

func decodeHeader(raw []byte, where string) (header, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	entries, err := cosewire.DecodeMap(raw)
	if err != nil {
		return nil, fmt.Errorf("%s header: %w", where, err)
	}
	return header(entries), nil
}

func (h header) has(label any) bool { return h.raw(label) != nil }

// del removes label, if present.
func (h *header) del(label any) {
	label = normLabel(label)
	*h = slices.DeleteFunc(*h, func(e cosewire.Entry) bool { return e.Key == label })
}

// set replaces label's value, or adds it.
func (h *header) set(label any, value []byte) {
	label = normLabel(label)
	for i := range *h {
		if (*h)[i].Key == label {
			(*h)[i].Value = value
			return
		}
	}
	*h = append(*h, cosewire.Entry{Key: label, Value: value})
}

func normLabel(label any) any {
	if i, ok := label.(int); ok {
		return int64(i)
	}
	return label
}

func (h header) raw(label any) []byte {
	label = normLabel(label)
	for _, e := range h {
		if e.Key == label {
			return e.Value
		}
	}
	return nil
}

func (h header) int(label any, name string) (int64, bool, error) {
	raw := h.raw(label)
	if raw == nil {
		return 0, false, nil
	}
	v, err := cosewire.Int(raw)
	if err != nil {
		return 0, true, fmt.Errorf("%w: %s (%v) must be an integer", ErrMalformed, name, label)
	}
	return v, true, nil
}

func (h header) bstr(label any, name string) ([]byte, bool, error) {
	raw := h.raw(label)
	if raw == nil {
		return nil, false, nil
	}
	v, err := cosewire.Bytes(raw)
	if err != nil {
		return nil, true, fmt.Errorf("%w: %s (%v) must be a byte string", ErrMalformed, name, label)
	}
	return v, true, nil
}

func (h header) tstr(label any, name string) (string, bool, error) {
	raw := h.raw(label)
	if raw == nil {
		return "", false, nil
	}
	v, err := cosewire.Text(raw)
	if err != nil {
		return "", true, fmt.Errorf("%w: %s (%v) must be a text string", ErrMalformed, name, label)
	}
	return v, true, nil
}

// tstrOrUint reads a content-type-like value: a media type string, or a CoAP
// Content-Format number rendered as "coap:NNN".
func (h header) tstrOrUint(label any, name string) (string, bool, error) {
	raw := h.raw(label)
	if raw == nil {
		return "", false, nil
	}
	if cosewire.Major(raw) == 0 {
		v, err := cosewire.Uint(raw)
		if err != nil {
			return "", true, fmt.Errorf("%w: %s (%v): %w", ErrMalformed, name, label, err)
		}
		return "coap:" + strconv.FormatUint(v, 10), true, nil
	}
	return h.tstr(label, name)
}

// Header parameters understood when named in crit (RFC 9052 §3.1): those this
// package reads and acts on in each kind of object.
var (
	statementCritLabels = []any{int64(LabelAlg), int64(LabelContentType), int64(LabelKID), int64(LabelCWTClaims),
		int64(LabelPayloadHashAlg), int64(LabelPreimageContentType), int64(LabelPayloadLocation), LabelWIT}
	receiptCritLabels = []any{int64(LabelAlg), int64(LabelKID), int64(LabelCWTClaims), int64(LabelVDS)}
)

// maxCritLabels bounds the crit array.
const maxCritLabels = 64

// checkCrit applies RFC 9052 §3.1 to crit (label 2): only in the protected
// header, a non-empty array of integer or text labels, each one understood
// (in understood). A message naming a critical parameter we do not
// understand must be refused, not processed with that parameter ignored.
func checkCrit(protected, unprotected header, understood []any) error {
	if unprotected.has(LabelCrit) {
		return fmt.Errorf("%w: crit (2) must be in the protected header", ErrCriticalHeader)
	}
	raw := protected.raw(LabelCrit)
	if raw == nil {
		return nil
	}
	items, err := cosewire.Array(raw)
	if err != nil || len(items) == 0 {
		return fmt.Errorf("%w: crit (2) must be a non-empty array of labels", ErrCriticalHeader)
	}
	if len(items) > maxCritLabels {
		return fmt.Errorf("%w: crit (2) names %d labels, the limit is %d", ErrCriticalHeader, len(items), maxCritLabels)
	}
	for _, it := range items {
		var label any
		switch cosewire.Major(it) {
		case 0, 1:
			v, err := cosewire.Int(it)
			if err != nil {
				return fmt.Errorf("%w: crit (2): %w", ErrCriticalHeader, err)
			}
			label = v
		case 3:
			v, err := cosewire.Text(it)
			if err != nil {
				return fmt.Errorf("%w: crit (2): %w", ErrCriticalHeader, err)
			}
			label = v
		default:
			return fmt.Errorf("%w: crit (2) labels must be integers or text strings", ErrCriticalHeader)
		}
		if !slices.Contains(understood, label) {
			return fmt.Errorf("%w: crit (2) names header parameter %v, which this verifier does not understand", ErrCriticalHeader, label)
		}
	}
	return nil
}

// cwtClaims is the decoded CWT claims set of label 15.
type cwtClaims struct {
	present  bool
	iss, sub string
	iat      time.Time
}

func (h header) cwt() (cwtClaims, error) {
	raw := h.raw(LabelCWTClaims)
	if raw == nil {
		return cwtClaims{}, nil
	}
	if cosewire.Major(raw) != 5 {
		return cwtClaims{}, fmt.Errorf("%w: CWT claims (15) must be a map", ErrMalformed)
	}
	c, err := decodeHeader(raw, "CWT claims")
	if err != nil {
		return cwtClaims{}, err
	}
	out := cwtClaims{present: true}
	if out.iss, _, err = c.tstr(claimIss, "CWT iss"); err != nil {
		return out, err
	}
	if out.sub, _, err = c.tstr(claimSub, "CWT sub"); err != nil {
		return out, err
	}
	if r := c.raw(claimIat); r != nil {
		t, err := numericDate(r)
		if err != nil {
			return out, err
		}
		out.iat = t
	}
	return out, nil
}

// numericDate decodes an RFC 8392 NumericDate: an integer or float, also
// accepted wrapped in tag 1 (as some issuers emit it).
func numericDate(raw []byte) (time.Time, error) {
	if n, err := cosewire.Int(raw); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	var v any
	if err := cosewire.Dec.Unmarshal(raw, &v); err != nil {
		return time.Time{}, fmt.Errorf("%w: CWT iat: %w", ErrMalformed, err)
	}
	switch t := v.(type) {
	case int64:
		return time.Unix(t, 0).UTC(), nil
	case uint64:
		if t > 1<<62 {
			break
		}
		return time.Unix(int64(t), 0).UTC(), nil
	case float64:
		if t != t || t > 1<<40 || t < -(1<<40) {
			break
		}
		return time.Unix(int64(t), 0).UTC(), nil
	case time.Time:
		return t.UTC(), nil
	case cbor.Tag:
		if t.Number == 1 {
			if n, ok := t.Content.(int64); ok {
				return time.Unix(n, 0).UTC(), nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("%w: CWT iat must be a NumericDate", ErrMalformed)
}

// hashAlgSize returns the digest size of a COSE hash algorithm.
func hashAlgSize(alg cose.Algorithm) int {
	switch alg {
	case -16: // SHA-256
		return 32
	case -43: // SHA-384
		return 48
	case -44: // SHA-512
		return 64
	}
	return 0
}
