// Package cosewire reads and writes the COSE_Sign1 wire structure (RFC 9052
// §4.2) byte-exactly, with the limits Trustfabric applies to untrusted input.
//
// It exists so that pkg/scitt can keep the protected header, payload and
// signature exactly as received (never re-encoded), splice a new unprotected
// header into a message without touching any other byte, and build the
// Sig_structure (RFC 9052 §4.4) from raw bytes. It is not a general COSE
// library: go-cose does the cryptography.
package cosewire

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// TagSign1 is the CBOR tag of COSE_Sign1 (RFC 9052 §2).
const TagSign1 = 18

// Limits applied to every decode of untrusted bytes.
const (
	MaxNestedLevels  = 16
	MaxArrayElements = 4096
	MaxMapPairs      = 512
)

// ErrMalformed is wrapped by every error of this package that describes input
// that is not a well-formed, strictly encoded COSE_Sign1.
var ErrMalformed = errors.New("malformed COSE_Sign1")

var (
	// Dec decodes untrusted CBOR: definite lengths only, duplicate map keys
	// rejected, integers decoded to int64 where they fit, nesting and size
	// limits enforced.
	Dec cbor.DecMode
	// Enc encodes with the core deterministic rules of RFC 8949 §4.2.1.
	Enc cbor.EncMode
)

func init() {
	var err error
	Dec, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		IntDec:           cbor.IntDecConvertSignedOrFail,
		MaxNestedLevels:  MaxNestedLevels,
		MaxArrayElements: MaxArrayElements,
		MaxMapPairs:      MaxMapPairs,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	Enc, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
}

// Sign1 is a COSE_Sign1 message split into its four raw items.
type Sign1 struct {
	// Raw is the whole message as received.
	Raw []byte
	// Protected is the content of the protected-header bstr: the encoded
	// header map, exactly as signed. It is empty for an empty header.
	Protected []byte
	// Unprotected is the encoded unprotected header map.
	Unprotected []byte
	// Payload is the payload; nil when the payload is detached (CBOR nil).
	Payload []byte
	// Detached reports whether the payload was CBOR nil.
	Detached bool
	// Signature is the signature bytes.
	Signature []byte

	// Offsets of the unprotected item within Raw.
	uStart, uEnd int
}

// Parse splits a tagged COSE_Sign1 message. It requires exactly one CBOR item
// (no trailing bytes), tag 18, a definite 4-element array, a bstr protected
// header holding a map (or empty), a map unprotected header, a bstr or nil
// payload and a bstr signature. maxSize bounds the input length.
func Parse(b []byte, maxSize int) (*Sign1, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrMalformed)
	}
	if len(b) > maxSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds the limit of %d bytes", ErrMalformed, len(b), maxSize)
	}
	switch {
	case b[0] == 0x84:
		return nil, fmt.Errorf("%w: untagged: COSE_Sign1 tag 18 is required", ErrMalformed)
	case b[0] != 0xd2:
		return nil, fmt.Errorf("%w: not a COSE_Sign1 (expected tag 18, first byte 0x%02x)", ErrMalformed, b[0])
	case len(b) < 2 || b[1] != 0x84:
		return nil, fmt.Errorf("%w: tag 18 must hold an array of 4 items", ErrMalformed)
	}
	// Each item is checked on its own: well-formedness, definite lengths,
	// duplicate keys at any depth, UTF-8 and the nesting limits.
	var items [4][]byte
	var offs [5]int
	offs[0] = 2
	for i := range items {
		n, err := skip(b[offs[i]:], 2)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		items[i] = b[offs[i] : offs[i]+n]
		offs[i+1] = offs[i] + n
	}
	if offs[4] != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes after the message", ErrMalformed, len(b)-offs[4])
	}
	m := &Sign1{Raw: b, uStart: offs[1], uEnd: offs[2]}

	var err error
	if m.Protected, err = Bytes(items[0]); err != nil {
		return nil, fmt.Errorf("%w: protected header must be a byte string", ErrMalformed)
	}
	// The map inside is decoded, with the same checks, by DecodeMap when
	// the caller reads it.
	if len(m.Protected) > 0 && major(m.Protected) != 5 {
		return nil, fmt.Errorf("%w: protected header must wrap a map", ErrMalformed)
	}
	if major(items[1]) != 5 {
		return nil, fmt.Errorf("%w: unprotected header must be a map", ErrMalformed)
	}
	m.Unprotected = items[1]
	switch {
	case len(items[2]) == 1 && items[2][0] == 0xf6:
		m.Detached = true
	case major(items[2]) == 2:
		m.Payload, _ = Bytes(items[2])
	default:
		return nil, fmt.Errorf("%w: payload must be a byte string or nil", ErrMalformed)
	}
	if m.Signature, err = Bytes(items[3]); err != nil {
		return nil, fmt.Errorf("%w: signature must be a byte string", ErrMalformed)
	}
	if len(m.Signature) == 0 {
		return nil, fmt.Errorf("%w: empty signature", ErrMalformed)
	}
	return m, nil
}

// WithUnprotected returns the message with its unprotected header replaced by
// the encoded map u. Every other byte is copied unchanged.
func (m *Sign1) WithUnprotected(u []byte) []byte {
	out := make([]byte, 0, len(m.Raw)-(m.uEnd-m.uStart)+len(u))
	out = append(out, m.Raw[:m.uStart]...)
	out = append(out, u...)
	return append(out, m.Raw[m.uEnd:]...)
}

// EmptyMap is the encoding of the empty map {}.
var EmptyMap = []byte{0xa0}

// Stripped returns the message with its unprotected header replaced by {}.
func (m *Sign1) Stripped() []byte {
	if bytes.Equal(m.Unprotected, EmptyMap) {
		return m.Raw
	}
	return m.WithUnprotected(EmptyMap)
}

// SigStructure returns ToBeSigned for COSE_Sign1 (RFC 9052 §4.4):
// ["Signature1", protected, external_aad (empty), payload], where protected is
// the protected-header bytes exactly as carried in the message.
func SigStructure(protected, payload []byte) []byte {
	out := make([]byte, 0, 16+len(protected)+len(payload)+18)
	out = append(out, 0x84, 0x6a)
	out = append(out, "Signature1"...)
	out = appendBstr(out, protected)
	out = append(out, 0x40) // external_aad = h''
	return appendBstr(out, payload)
}

// Build encodes a tagged COSE_Sign1 from its parts. A nil payload is encoded
// as CBOR nil (detached); unprotected must be an encoded map.
func Build(protected, unprotected, payload, signature []byte) []byte {
	out := make([]byte, 0, 32+len(protected)+len(unprotected)+len(payload)+len(signature))
	out = append(out, 0xd2, 0x84)
	out = appendBstr(out, protected)
	out = append(out, unprotected...)
	if payload == nil {
		out = append(out, 0xf6)
	} else {
		out = appendBstr(out, payload)
	}
	return appendBstr(out, signature)
}

// AppendBstr appends b encoded as a CBOR byte string.
func AppendBstr(out, b []byte) []byte { return appendBstr(out, b) }

func appendBstr(out, b []byte) []byte {
	out = appendHead(out, 2, uint64(len(b)))
	return append(out, b...)
}

// AppendHead appends a CBOR initial byte and argument in the shortest form.
func AppendHead(out []byte, major byte, n uint64) []byte { return appendHead(out, major, n) }

func appendHead(out []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(out, m|byte(n))
	case n <= 0xff:
		return append(out, m|24, byte(n))
	case n <= 0xffff:
		return append(out, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(out, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(out, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func major(b []byte) byte {
	if len(b) == 0 {
		return 0xff
	}
	return b[0] >> 5
}

// Major returns the CBOR major type of the first byte of b (0xff when empty).
func Major(b []byte) byte { return major(b) }
