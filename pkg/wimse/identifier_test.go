package wimse

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestEncodeSegmentOddBranchNames(t *testing.T) {
	names := []string{"feature/x@y", "release+1", "a:b", "main", "my_branch", "_", "__", ".", "..", "", "%41", "ünïcode", "a b", "_41", "x_2Fy"}
	seen := map[string]string{}
	for _, n := range names {
		enc := EncodeSegment(n)
		if err := spiffeid.ValidatePathSegment(enc); err != nil {
			t.Errorf("EncodeSegment(%q) = %q: go-spiffe rejects it: %v", n, enc, err)
		}
		if prev, ok := seen[enc]; ok {
			t.Errorf("EncodeSegment(%q) and EncodeSegment(%q) collide on %q", n, prev, enc)
		}
		seen[enc] = n
		dec, err := DecodeSegment(enc)
		if err != nil || dec != n {
			t.Errorf("DecodeSegment(%q) = %q, %v; want %q", enc, dec, err, n)
		}
	}
}

func TestNewSPIFFEIdentifierReversible(t *testing.T) {
	segs := []string{"github", "acme", "widgets", ".github", "workflows", "release.yml", "refs", "heads", "feature", "x@y"}
	id, err := NewSPIFFEIdentifier("ci.example.org", segs...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spiffeid.FromString(id.String()); err != nil {
		t.Fatalf("go-spiffe rejects %q: %v", id, err)
	}
	got, err := id.Segments()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(segs, got); diff != "" {
		t.Errorf("segments round trip (-want +got):\n%s", diff)
	}
}

func TestDecodeSegmentRejectsNonCanonical(t *testing.T) {
	for _, s := range []string{"_41", "_4", "_zz", "a@b", "_2e"} {
		if _, err := DecodeSegment(s); !errors.Is(err, ErrInvalidIdentifier) {
			t.Errorf("DecodeSegment(%q) error = %v, want ErrInvalidIdentifier", s, err)
		}
	}
}

func TestParseIdentifier(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"spiffe://ci.example.org/github/acme/widgets", true},
		{"wimse://ci.example.org/ci/job", true},
		{"spiffe://ci.example.org/a/../b", false},
		{"spiffe://ci.example.org/feature/x@y", false},
		{"wimse://ci.example.org:8443/x", false},
		{"wimse://user@ci.example.org/x", false},
		{"wimse://ci.example.org/x?q=1", false},
		{"wimse://ci.example.org/x#f", false},
		{"wimse://10.0.0.1/x", false},
		{"/relative/path", false},
		{"urn:x:y", false},
		{"spiffe://ci.example.org/" + strings.Repeat("a", MaxIdentifierLen), false},
	}
	for _, tt := range tests {
		_, err := ParseIdentifier(tt.in)
		if tt.ok && err != nil {
			t.Errorf("ParseIdentifier(%q) = %v, want ok", tt.in, err)
		}
		if !tt.ok && !errors.Is(err, ErrInvalidIdentifier) {
			t.Errorf("ParseIdentifier(%q) = %v, want ErrInvalidIdentifier", tt.in, err)
		}
	}
}

func TestIdentifierOver2048Bytes(t *testing.T) {
	long := strings.Repeat("b", 700)
	_, err := NewSPIFFEIdentifier("ci.example.org", long, long, long)
	if !errors.Is(err, ErrInvalidIdentifier) {
		t.Fatalf("err = %v, want ErrInvalidIdentifier for a 2100-byte identifier", err)
	}
}

func FuzzDecodeSegment(f *testing.F) {
	for _, s := range []string{"feature_2Fx_40y", "_", "_2E", "abc", "_5F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dec, err := DecodeSegment(s)
		if err != nil {
			return
		}
		if EncodeSegment(dec) != s {
			t.Fatalf("decode(%q) = %q does not re-encode to the input", s, dec)
		}
	})
}

func FuzzParseIdentifier(f *testing.F) {
	for _, s := range []string{"spiffe://td/a", "wimse://td/x", "http://a:1/", "spiffe://"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIdentifier(s)
		if err != nil {
			return
		}
		if len(id.String()) > MaxIdentifierLen || id.TrustDomain() == "" {
			t.Fatalf("accepted %q", s)
		}
	})
}
