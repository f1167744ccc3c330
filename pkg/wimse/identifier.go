package wimse

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// MaxIdentifierLen is the largest workload identifier accepted or produced, in
// bytes (draft-ietf-wimse-identifier-03 §3: "SHOULD NOT exceed 2048 bytes").
const MaxIdentifierLen = 2048

// Identifier is a validated workload identifier (draft-ietf-wimse-identifier-03
// §3): an absolute URI whose authority is the trust domain, with no userinfo,
// port, query or fragment, at most [MaxIdentifierLen] bytes. spiffe:// ids are
// also valid SPIFFE IDs (checked by go-spiffe's spiffeid). The zero value is
// not a valid identifier.
type Identifier struct {
	s      string
	scheme string
	td     string
	path   string
}

// ParseIdentifier validates s as a workload identifier. Errors wrap
// [ErrInvalidIdentifier].
func ParseIdentifier(s string) (Identifier, error) {
	if len(s) > MaxIdentifierLen {
		return Identifier{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidIdentifier, len(s), MaxIdentifierLen)
	}
	if strings.HasPrefix(s, "spiffe://") {
		id, err := spiffeid.FromString(s)
		if err != nil {
			return Identifier{}, fmt.Errorf("%w: %w", ErrInvalidIdentifier, err)
		}
		return Identifier{s: id.String(), scheme: "spiffe", td: id.TrustDomain().Name(), path: id.Path()}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return Identifier{}, fmt.Errorf("%w: %w", ErrInvalidIdentifier, err)
	}
	switch {
	case u.Scheme == "" || !u.IsAbs():
		return Identifier{}, fmt.Errorf("%w: not an absolute URI", ErrInvalidIdentifier)
	case u.Opaque != "" || u.Host == "":
		return Identifier{}, fmt.Errorf("%w: no trust domain authority", ErrInvalidIdentifier)
	case u.User != nil:
		return Identifier{}, fmt.Errorf("%w: userinfo is not allowed", ErrInvalidIdentifier)
	case u.Port() != "" || strings.HasSuffix(u.Host, ":"):
		return Identifier{}, fmt.Errorf("%w: a port is not allowed", ErrInvalidIdentifier)
	case u.RawQuery != "" || u.ForceQuery:
		return Identifier{}, fmt.Errorf("%w: a query is not allowed", ErrInvalidIdentifier)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return Identifier{}, fmt.Errorf("%w: a fragment is not allowed", ErrInvalidIdentifier)
	case net.ParseIP(strings.Trim(u.Host, "[]")) != nil:
		return Identifier{}, fmt.Errorf("%w: the trust domain must be a name, not an IP address", ErrInvalidIdentifier)
	}
	return Identifier{s: s, scheme: strings.ToLower(u.Scheme), td: u.Host, path: u.EscapedPath()}, nil
}

// RequireIdentifier is ParseIdentifier for constants and tests: it panics on
// error.
func RequireIdentifier(s string) Identifier {
	id, err := ParseIdentifier(s)
	if err != nil {
		panic(err)
	}
	return id
}

// NewSPIFFEIdentifier builds spiffe://td/seg1/seg2/… from raw values; each
// value is escaped with [EncodeSegment], so any string is accepted and the
// result is reversible with [Identifier.Segments].
func NewSPIFFEIdentifier(trustDomain string, segments ...string) (Identifier, error) {
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return Identifier{}, fmt.Errorf("%w: trust domain: %w", ErrInvalidIdentifier, err)
	}
	enc := make([]string, len(segments))
	for i, s := range segments {
		enc[i] = EncodeSegment(s)
	}
	id, err := spiffeid.FromSegments(td, enc...)
	if err != nil {
		return Identifier{}, fmt.Errorf("%w: %w", ErrInvalidIdentifier, err)
	}
	return ParseIdentifier(id.String())
}

// String returns the identifier URI.
func (id Identifier) String() string { return id.s }

// IsZero reports whether id is the zero value.
func (id Identifier) IsZero() bool { return id.s == "" }

// Scheme returns the lower-case URI scheme ("spiffe", "wimse", …).
func (id Identifier) Scheme() string { return id.scheme }

// TrustDomain returns the authority of the identifier.
func (id Identifier) TrustDomain() string { return id.td }

// Path returns the (escaped) path, "" or starting with "/".
func (id Identifier) Path() string { return id.path }

// Origin returns the Workload Identifier Origin: scheme and trust domain, no path.
func (id Identifier) Origin() string { return id.scheme + "://" + id.td }

// SPIFFEID returns the identifier as a go-spiffe ID when its scheme is spiffe.
func (id Identifier) SPIFFEID() (spiffeid.ID, bool) {
	if id.scheme != "spiffe" {
		return spiffeid.ID{}, false
	}
	sid, err := spiffeid.FromString(id.s)
	return sid, err == nil
}

// Segments returns the decoded path segments (see [DecodeSegment]).
func (id Identifier) Segments() ([]string, error) {
	if id.path == "" {
		return nil, nil
	}
	parts := strings.Split(strings.TrimPrefix(id.path, "/"), "/")
	out := make([]string, len(parts))
	for i, p := range parts {
		d, err := DecodeSegment(p)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// MarshalText implements encoding.TextMarshaler.
func (id Identifier) MarshalText() ([]byte, error) { return []byte(id.s), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseIdentifier.
func (id *Identifier) UnmarshalText(b []byte) error {
	v, err := ParseIdentifier(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// EncodeSegment escapes an arbitrary string into one valid SPIFFE path
// segment. The encoding is:
//
//   - letters, digits, '.' and '-' stand for themselves;
//   - every other byte, '_' and '/' included, becomes '_' followed by two
//     upper-case hex digits ("@" → "_40", "_" → "_5F", "/" → "_2F");
//   - the segments "." and ".." become "_2E" and "_2E_2E";
//   - the empty string becomes "_" (a lone '_' never occurs otherwise).
//
// Because '_' always introduces an escape, the mapping is injective and
// [DecodeSegment] inverts it exactly; the output only uses characters SPIFFE
// allows, so go-spiffe never rejects it.
func EncodeSegment(s string) string {
	switch s {
	case "":
		return "_"
	case ".":
		return "_2E"
	case "..":
		return "_2E_2E"
	}
	var b strings.Builder
	b.Grow(len(s))
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isPlainSegmentChar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// DecodeSegment inverts [EncodeSegment]. Errors wrap [ErrInvalidIdentifier].
func DecodeSegment(s string) (string, error) {
	if s == "_" {
		return "", nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' {
			if !isPlainSegmentChar(c) {
				return "", fmt.Errorf("%w: byte %q at %d is not an encoded segment character", ErrInvalidIdentifier, c, i)
			}
			b.WriteByte(c)
			continue
		}
		if i+3 > len(s) {
			return "", fmt.Errorf("%w: truncated escape at %d", ErrInvalidIdentifier, i)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("%w: bad escape at %d", ErrInvalidIdentifier, i)
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	out := b.String()
	if EncodeSegment(out) != s {
		return "", fmt.Errorf("%w: segment %q is not in canonical encoding", ErrInvalidIdentifier, s)
	}
	return out, nil
}

func isPlainSegmentChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-'
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
