package identity

import (
	"fmt"
	"strings"

	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// Template builds workload identifiers from CI token claims. Syntax:
//
//	spiffe://{trustDomain}/github/{repository}/{workflow_path}/{ref}
//
// The authority is {trustDomain} or the configured trust domain itself. Each
// path segment is either a literal (letters, digits, '.', '-'; '_' is the
// escape character), or a whole-segment placeholder:
//
//   - {claim} splits the claim value on '/' and escapes each part with
//     [wimse.EncodeSegment], so "refs/heads/feature/x@y" reads
//     refs/heads/feature/x_40y;
//   - {claim:segment} puts the whole value in one segment, '/' escaped as _2F.
//
// At most one {claim} may have a variable number of segments (claims the
// provider knows to have a fixed depth, like GitHub's repository and
// workflow_path, do not count, and their depth is checked at expansion), so no
// two claim sets yield the same identifier; decoding the segments gives the
// values back.
type Template struct {
	raw    string
	prefix string // scheme://authority
	segs   []tmplSeg
	depth  map[string]int
}

type tmplSeg struct {
	literal string
	claim   string
	spread  bool
}

// ParseTemplate parses and checks a template for trust domain td; depth gives
// the fixed segment counts of claims that have one.
func ParseTemplate(s, td string, depth map[string]int) (*Template, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "spiffe" && scheme != "wimse") {
		return nil, fmt.Errorf("template %q must start with spiffe:// or wimse://", s)
	}
	auth, p, _ := strings.Cut(rest, "/")
	if auth != "{trustDomain}" && auth != td {
		return nil, fmt.Errorf("template %q: the authority must be {trustDomain}", s)
	}
	t := &Template{raw: s, prefix: scheme + "://" + td, depth: depth}
	variable := 0
	for _, seg := range strings.Split(p, "/") {
		switch {
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			name, single := strings.CutSuffix(seg[1:len(seg)-1], ":segment")
			if !validClaimName(name) {
				return nil, fmt.Errorf("template %q: bad placeholder %q", s, seg)
			}
			if _, fixed := depth[name]; !fixed && !single {
				variable++
			}
			t.segs = append(t.segs, tmplSeg{claim: name, spread: !single})
		default:
			if strings.ContainsAny(seg, "{}") || seg == "" || seg == "." || seg == ".." {
				return nil, fmt.Errorf("template %q: segment %q must be a literal or one whole placeholder", s, seg)
			}
			for _, c := range []byte(seg) {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
					return nil, fmt.Errorf("template %q: literal segment %q may only use letters, digits, '.' and '-'", s, seg)
				}
			}
			t.segs = append(t.segs, tmplSeg{literal: seg})
		}
	}
	if variable > 1 {
		return nil, fmt.Errorf("template %q: at most one {claim} of variable depth (use {claim:segment}), or identifiers could collide", s)
	}
	return t, nil
}

func validClaimName(n string) bool {
	if n == "" {
		return false
	}
	for _, c := range []byte(n) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// String returns the template text.
func (t *Template) String() string { return t.raw }

// Expand builds the identifier from claims. A missing placeholder claim, or a
// fixed-depth claim of the wrong depth, wraps [ErrClaims]; an identifier
// over 2048 bytes wraps [wimse.ErrInvalidIdentifier].
func (t *Template) Expand(claims map[string]string) (wimse.Identifier, error) {
	var b strings.Builder
	b.WriteString(t.prefix)
	for _, s := range t.segs {
		if s.literal != "" {
			b.WriteString("/" + s.literal)
			continue
		}
		v, ok := claims[s.claim]
		if !ok {
			return wimse.Identifier{}, fmt.Errorf("%w: %s (needed by the identifier template)", ErrClaims, s.claim)
		}
		if !s.spread {
			b.WriteString("/" + wimse.EncodeSegment(v))
			continue
		}
		parts := strings.Split(v, "/")
		if d, fixed := t.depth[s.claim]; fixed && len(parts) != d {
			return wimse.Identifier{}, fmt.Errorf("%w: %s has %d path segments, want %d", ErrClaims, s.claim, len(parts), d)
		}
		for _, p := range parts {
			b.WriteString("/" + wimse.EncodeSegment(p))
		}
		if b.Len() > wimse.MaxIdentifierLen {
			break
		}
	}
	return wimse.ParseIdentifier(b.String())
}
