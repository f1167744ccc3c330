package cosewire

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// This file is a small, allocation-light CBOR reader for COSE messages and
// header maps, which are decoded on every verification. It is stricter than
// the fxamacker decoder configured in Dec: definite lengths only, integers,
// lengths and tags in their shortest form, no duplicate keys at any depth
// (compared on those canonical encodings, so one label cannot hide behind
// two encodings), valid UTF-8 text, nesting and size limits, and well-formed
// simple values.

// Entry is one key/value pair of a decoded map; Key is an int64 or a string
// and Value the raw encoding of the value (a sub-slice of the input).
type Entry struct {
	Key   any
	Value []byte
}

// head reads an item's initial byte and argument. It returns the major
// type, the argument, the head length, and the additional-info bits.
func head(b []byte) (major byte, arg uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, fmt.Errorf("%w: unexpected end of data", ErrMalformed)
	}
	major, ai := b[0]>>5, b[0]&0x1f
	var min uint64 // smallest argument this length may carry
	switch {
	case ai < 24:
		return major, uint64(ai), 1, nil
	case ai == 24:
		if len(b) < 2 {
			break
		}
		arg, n, min = uint64(b[1]), 2, 24
	case ai == 25:
		if len(b) < 3 {
			break
		}
		arg, n, min = uint64(binary.BigEndian.Uint16(b[1:])), 3, 1<<8
	case ai == 26:
		if len(b) < 5 {
			break
		}
		arg, n, min = uint64(binary.BigEndian.Uint32(b[1:])), 5, 1<<16
	case ai == 27:
		if len(b) < 9 {
			break
		}
		arg, n, min = binary.BigEndian.Uint64(b[1:]), 9, 1<<32
	default:
		return 0, 0, 0, fmt.Errorf("%w: indefinite-length or reserved encoding (0x%02x)", ErrMalformed, b[0])
	}
	if n == 0 {
		return 0, 0, 0, fmt.Errorf("%w: unexpected end of data", ErrMalformed)
	}
	// Integers, lengths and tags must use the shortest form (RFC 8949
	// §4.2.1): otherwise one label has several encodings, and duplicate keys
	// compared byte-wise would slip through. Floats (major 7) keep their
	// width, which is part of their type.
	if major != 7 && arg < min {
		return 0, 0, 0, fmt.Errorf("%w: integer or length not in its shortest form (0x%02x)", ErrMalformed, b[0])
	}
	return major, arg, n, nil
}

// skip returns the length of the well-formed item at the start of b.
func skip(b []byte, depth int) (int, error) {
	if depth > MaxNestedLevels {
		return 0, fmt.Errorf("%w: nesting deeper than %d levels", ErrMalformed, MaxNestedLevels)
	}
	major, arg, n, err := head(b)
	if err != nil {
		return 0, err
	}
	switch major {
	case 0, 1:
		return n, nil
	case 2, 3:
		if arg > uint64(len(b)-n) {
			return 0, fmt.Errorf("%w: string longer than the data", ErrMalformed)
		}
		end := n + int(arg)
		if major == 3 && !utf8.Valid(b[n:end]) {
			return 0, fmt.Errorf("%w: invalid UTF-8 in a text string", ErrMalformed)
		}
		return end, nil
	case 4:
		if arg > MaxArrayElements {
			return 0, fmt.Errorf("%w: array of %d items exceeds %d", ErrMalformed, arg, MaxArrayElements)
		}
		for i := uint64(0); i < arg; i++ {
			m, err := skip(b[n:], depth+1)
			if err != nil {
				return 0, err
			}
			n += m
		}
		return n, nil
	case 5:
		_, m, err := walkMap(b, depth, nil)
		return m, err
	case 6:
		m, err := skip(b[n:], depth+1)
		return n + m, err
	default: // 7: simple values and floats
		ai := b[0] & 0x1f
		if ai == 24 && arg < 32 {
			return 0, fmt.Errorf("%w: invalid simple value encoding", ErrMalformed)
		}
		return n, nil
	}
}

// walkMap checks the map at the start of b and, when out is not nil,
// appends its entries. Keys must be integers or text strings when out is
// not nil; in nested maps any key type is allowed but duplicates are not.
func walkMap(b []byte, depth int, out *[]Entry) ([]Entry, int, error) {
	if depth > MaxNestedLevels {
		return nil, 0, fmt.Errorf("%w: nesting deeper than %d levels", ErrMalformed, MaxNestedLevels)
	}
	major, arg, n, err := head(b)
	if err != nil {
		return nil, 0, err
	}
	if major != 5 {
		return nil, 0, fmt.Errorf("%w: expected a map", ErrMalformed)
	}
	if arg > MaxMapPairs {
		return nil, 0, fmt.Errorf("%w: map of %d pairs exceeds %d", ErrMalformed, arg, MaxMapPairs)
	}
	// The keys seen, for the duplicate check: on the stack for the small
	// maps COSE headers are.
	var keyBuf [16][]byte
	keys := keyBuf[:0]
	var entries []Entry
	if out != nil {
		entries = make([]Entry, 0, min(arg, uint64(len(b)/2)))
	}
	for i := uint64(0); i < arg; i++ {
		kl, err := skip(b[n:], depth+1)
		if err != nil {
			return nil, 0, err
		}
		key := b[n : n+kl]
		if key[0]>>5 == 7 && key[0]&0x1f >= 25 && key[0]&0x1f <= 27 {
			// A float has one value under several widths; COSE never uses
			// float keys, so refuse them rather than miss a duplicate.
			return nil, 0, fmt.Errorf("%w: floating-point map key", ErrMalformed)
		}
		for _, k := range keys {
			if string(k) == string(key) {
				return nil, 0, fmt.Errorf("%w: duplicate map key %x", ErrMalformed, key)
			}
		}
		if arg > 1 {
			keys = append(keys, key)
		}
		n += kl
		vl, err := skip(b[n:], depth+1)
		if err != nil {
			return nil, 0, err
		}
		if out != nil {
			k, err := label(key)
			if err != nil {
				return nil, 0, err
			}
			entries = append(entries, Entry{Key: k, Value: b[n : n+vl]})
		}
		n += vl
	}
	return entries, n, nil
}

// label decodes a header label: an integer (as int64) or a text string.
func label(b []byte) (any, error) {
	major, arg, n, _ := head(b)
	switch major {
	case 0:
		if arg > math.MaxInt64 {
			break
		}
		return int64(arg), nil
	case 1:
		if arg > math.MaxInt64 {
			break
		}
		return -1 - int64(arg), nil
	case 3:
		return string(b[n:]), nil
	}
	return nil, fmt.Errorf("%w: map label %x is neither an integer nor a text string", ErrMalformed, b)
}

// DecodeMap decodes b, which must be exactly one CBOR map with integer or
// text-string keys, into its entries. Values are sub-slices of b.
func DecodeMap(b []byte) ([]Entry, error) {
	var out []Entry
	entries, n, err := walkMap(b, 1, &out)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes after a map", ErrMalformed, len(b)-n)
	}
	return entries, nil
}

// Int decodes an integer item that fits in int64.
func Int(b []byte) (int64, error) {
	major, arg, n, err := head(b)
	if err != nil || n != len(b) || major > 1 || arg > math.MaxInt64 {
		return 0, fmt.Errorf("%w: not an integer", ErrMalformed)
	}
	if major == 1 {
		return -1 - int64(arg), nil
	}
	return int64(arg), nil
}

// Uint decodes an unsigned integer item.
func Uint(b []byte) (uint64, error) {
	major, arg, n, err := head(b)
	if err != nil || n != len(b) || major != 0 {
		return 0, fmt.Errorf("%w: not an unsigned integer", ErrMalformed)
	}
	return arg, nil
}

// Bytes decodes a byte string item; the result aliases b.
func Bytes(b []byte) ([]byte, error) {
	major, arg, n, err := head(b)
	if err != nil || major != 2 || arg != uint64(len(b)-n) {
		return nil, fmt.Errorf("%w: not a byte string", ErrMalformed)
	}
	return b[n:], nil
}

// Text decodes a text string item.
func Text(b []byte) (string, error) {
	major, arg, n, err := head(b)
	if err != nil || major != 3 || arg != uint64(len(b)-n) || !utf8.Valid(b[n:]) {
		return "", fmt.Errorf("%w: not a text string", ErrMalformed)
	}
	return string(b[n:]), nil
}

// Array splits an array item into its raw elements.
func Array(b []byte) ([][]byte, error) {
	major, arg, n, err := head(b)
	if err != nil || major != 4 {
		return nil, fmt.Errorf("%w: not an array", ErrMalformed)
	}
	if arg > MaxArrayElements {
		return nil, fmt.Errorf("%w: array of %d items exceeds %d", ErrMalformed, arg, MaxArrayElements)
	}
	out := make([][]byte, 0, arg)
	for i := uint64(0); i < arg; i++ {
		m, err := skip(b[n:], 2)
		if err != nil {
			return nil, err
		}
		out = append(out, b[n:n+m])
		n += m
	}
	if n != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes after an array", ErrMalformed, len(b)-n)
	}
	return out, nil
}
