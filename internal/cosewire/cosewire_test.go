package cosewire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func TestDecodeMapRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"not a map":       {0x80},
		"duplicate key":   {0xa2, 0x01, 0x00, 0x01, 0x00},
		"nested dup":      {0xa1, 0x01, 0xa2, 0x61, 'a', 0x00, 0x61, 'a', 0x01},
		"indefinite":      {0xbf, 0x01, 0x00, 0xff},
		"truncated":       {0xa1, 0x01},
		"trailing":        {0xa0, 0x00},
		"bad utf8":        {0xa1, 0x01, 0x62, 0xff, 0xfe},
		"bytes label":     {0xa1, 0x41, 0x00, 0x00},
		"too long string": {0xa1, 0x01, 0x5a, 0xff, 0xff, 0xff, 0xff},
		"huge array":      {0xa1, 0x01, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"deep":            append(append([]byte{0xa1, 0x01}, bytes.Repeat([]byte{0x81}, 20)...), 0x00),
		"reserved ai":     {0xa1, 0x01, 0x1c},
		"bad simple":      {0xa1, 0x01, 0xf8, 0x10},
		"non-minimal dup": {0xa2, 0x01, 0x61, 'A', 0x18, 0x01, 0x61, 'B'},
		"non-minimal len": {0xa1, 0x01, 0x78, 0x01, 'A'},
		"non-minimal key": {0xa1, 0x19, 0x00, 0x04, 0x00},
		"float keys":      {0xa1, 0x01, 0xa2, 0xf9, 0x3c, 0x00, 0x00, 0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x01},
	} {
		if _, err := DecodeMap(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestDecodeMapAgreesWithFxamacker(t *testing.T) {
	in := map[any]any{int64(1): int64(-7), int64(4): []byte{1, 2}, "wit": "a.b.c", int64(15): map[int64]any{1: "iss", 6: int64(1700000000)}, int64(-70000): 1.5}
	b, err := Enc.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := DecodeMap(b)
	if err != nil {
		t.Fatal(err)
	}
	var ref map[any]cbor.RawMessage
	if err := Dec.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(ref) {
		t.Fatalf("%d entries, fxamacker %d", len(entries), len(ref))
	}
	for _, e := range entries {
		if !bytes.Equal(e.Value, ref[e.Key]) {
			t.Errorf("key %v: %x vs %x", e.Key, e.Value, ref[e.Key])
		}
	}
}

// FuzzDecodeMap: never panics; when it accepts, fxamacker agrees the bytes
// are one well-formed item, and the values it returns are well-formed too.
func FuzzDecodeMap(f *testing.F) {
	f.Add([]byte{0xa1, 0x01, 0x26})
	f.Add([]byte{0xa2, 0x01, 0x26, 0x0f, 0xa2, 0x01, 0x61, 'i', 0x02, 0x61, 's'})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := DecodeMap(b)
		if err != nil {
			return
		}
		if err := cbor.Wellformed(b); err != nil {
			t.Fatalf("accepted input fxamacker finds malformed: %v", err)
		}
		// Never looser than fxamacker on duplicate keys (the parser
		// differential that matters: two readers seeing different labels).
		// fxamacker also checks the content of tags it knows (tag 1 must
		// hold a number); we leave that to the reader of the value.
		var ref map[any]cbor.RawMessage
		err = Dec.Unmarshal(b, &ref)
		var dup *cbor.DupMapKeyError
		if errors.As(err, &dup) {
			t.Fatalf("accepted a map fxamacker finds a duplicate key in: %v", err)
		}
		if err == nil && len(ref) != len(entries) {
			t.Fatalf("%d entries, fxamacker %d", len(entries), len(ref))
		}
		for _, e := range entries {
			if n, err := skip(e.Value, 1); err != nil || n != len(e.Value) {
				t.Fatalf("value %x: %v", e.Value, err)
			}
		}
	})
}

// FuzzParse: never panics; a parsed message splices back to itself.
func FuzzParse(f *testing.F) {
	f.Add(Build([]byte{0xa1, 0x01, 0x26}, EmptyMap, []byte("p"), []byte("sig")))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b, 1<<20)
		if err != nil {
			return
		}
		if !bytes.Equal(m.WithUnprotected(m.Unprotected), b) {
			t.Fatal("splicing the same unprotected header changed the message")
		}
	})
}
