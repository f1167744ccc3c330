package sdjwt

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"

	"github.com/trustfabric/trustfabric/internal/jsonlimit"
)

var b64 = base64.RawURLEncoding

// Disclosure is one salted claim (RFC 9901 §4.2). Raw is the encoded form
// as it was issued; its digest is computed over Raw, never over a
// re-encoding.
type Disclosure struct {
	Raw  string
	Salt string
	// Name is the claim name of an object-property Disclosure; empty for an
	// array element (IsElement).
	Name      string
	IsElement bool
	// value is the decoded claim value (numbers as json.Number); never
	// modified once parsed.
	value any
}

// Value returns the claim value as JSON.
func (d *Disclosure) Value() json.RawMessage {
	b, _ := marshal(d.value)
	return b
}

// Digest returns the base64url SHA-256 digest of the Disclosure (§4.2.3).
func (d *Disclosure) Digest() string { return digest(d.Raw) }

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return b64.EncodeToString(h[:])
}

// ParseDisclosure decodes a Disclosure, strictly: base64url without padding,
// a JSON array of two or three elements, a string salt, a string name that
// is neither "_sd" nor "...".
func ParseDisclosure(s string) (*Disclosure, error) {
	if len(s) == 0 || len(s) > MaxDisclosureSize {
		return nil, fmt.Errorf("%w: disclosure of %d bytes (at most %d)", ErrMalformed, len(s), MaxDisclosureSize)
	}
	raw, err := b64.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: disclosure is not base64url: %w", ErrMalformed, err)
	}
	if err := jsonlimit.CheckDepth(raw, MaxDepth); err != nil {
		return nil, fmt.Errorf("%w: disclosure: %w", ErrMalformed, err)
	}
	var arr []any
	if err := decodeJSON(raw, &arr); err != nil {
		return nil, fmt.Errorf("%w: disclosure is not a JSON array: %w", ErrMalformed, err)
	}
	d := &Disclosure{Raw: s}
	var ok bool
	switch len(arr) {
	case 2:
		d.IsElement, d.value = true, arr[1]
	case 3:
		if d.Name, ok = arr[1].(string); !ok {
			return nil, fmt.Errorf("%w: disclosure claim name is not a string", ErrMalformed)
		}
		if d.Name == "_sd" || d.Name == "..." {
			return nil, fmt.Errorf("%w: disclosure claim name %q is reserved", ErrCollision, d.Name)
		}
		d.value = arr[2]
	default:
		return nil, fmt.Errorf("%w: disclosure has %d elements, want 2 or 3", ErrMalformed, len(arr))
	}
	if d.Salt, ok = arr[0].(string); !ok {
		return nil, fmt.Errorf("%w: disclosure salt is not a string", ErrMalformed)
	}
	return d, nil
}

// newDisclosure creates a Disclosure with a fresh 128-bit salt (§4.2.1).
func newDisclosure(r io.Reader, name string, element bool, value any) (*Disclosure, error) {
	salt := make([]byte, 16)
	if _, err := io.ReadFull(r, salt); err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	saltStr := b64.EncodeToString(salt)
	var arr []any
	if element {
		arr = []any{saltStr, value}
	} else {
		arr = []any{saltStr, name, value}
	}
	b, err := marshal(arr)
	if err != nil {
		return nil, err
	}
	// Parsed back, so that the value is held as a verifier would see it.
	return ParseDisclosure(b64.EncodeToString(b))
}

// marshal is json.Marshal without HTML escaping (the bytes other
// implementations produce for the same values).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func decoyDigest(r io.Reader) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("decoy: %w", err)
	}
	return digest(b64.EncodeToString(b)), nil
}

var defaultRand io.Reader = rand.Reader
