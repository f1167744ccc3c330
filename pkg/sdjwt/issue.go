package sdjwt

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// SD marks a claim value, or an array element, as selectively disclosable.
// Values nested inside it may themselves be SD (recursive disclosure,
// RFC 9901 §6.3).
type SD struct{ Value any }

// Algorithms are the JWS algorithms of Issuer-signed JWTs and KB-JWTs: the
// project's statement algorithms (pkg/keys), never "none" or HMAC.
var Algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.EdDSA}

type issueOptions struct {
	typ    string
	decoys int
	rand   io.Reader
}

// IssueOption configures Issue.
type IssueOption func(*issueOptions) error

// WithType sets the typ header. Default TypeVC (dc+sd-jwt).
func WithType(typ string) IssueOption {
	return func(o *issueOptions) error {
		if typ == "" {
			return errors.New("empty typ")
		}
		o.typ = typ
		return nil
	}
}

// WithDecoys adds between 1 and n decoy digests (§4.2.5) to every "_sd"
// array, so that the number of hidden claims is not revealed. Default 0.
func WithDecoys(n int) IssueOption {
	return func(o *issueOptions) error {
		if n < 0 || n > 64 {
			return fmt.Errorf("decoys %d: want 0 to 64", n)
		}
		o.decoys = n
		return nil
	}
}

// WithRand sets the source of salts and decoys. Default crypto/rand; tests
// may pass a deterministic reader.
func WithRand(r io.Reader) IssueOption {
	return func(o *issueOptions) error { o.rand = r; return nil }
}

// Issue creates an SD-JWT over claims, signed by key with the kid header
// (its JWK thumbprint). Values wrapped in [SD] become Disclosures; every
// other value is plain. "_sd_alg" is set to sha-256. The result carries
// every Disclosure (the form given to the Holder).
func Issue(key *keys.PrivateKey, claims map[string]any, opts ...IssueOption) (*SDJWT, error) {
	o := issueOptions{typ: TypeVC, rand: defaultRand}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("issue: %w", err)
		}
	}
	if _, ok := claims["_sd_alg"]; ok {
		return nil, fmt.Errorf("issue: %w: _sd_alg is set by the issuer", ErrCollision)
	}
	b := &builder{o: o}
	payload, err := b.object(claims, 0)
	if err != nil {
		return nil, fmt.Errorf("issue: %w", err)
	}
	payload["_sd_alg"] = HashAlg
	body, err := marshal(payload)
	if err != nil {
		return nil, err
	}
	signer, err := key.JOSESigner(o.typ, true, Algorithms)
	if err != nil {
		return nil, fmt.Errorf("issue: %w", err)
	}
	jws, err := signer.Sign(body)
	if err != nil {
		return nil, fmt.Errorf("issue: sign: %w", err)
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("issue: %w", err)
	}
	return &SDJWT{IssuerJWT: compact, Disclosures: b.disclosures}, nil
}

type builder struct {
	o           issueOptions
	disclosures []*Disclosure
}

func (b *builder) value(v any, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("claims nest deeper than %d levels", MaxDepth)
	}
	switch x := v.(type) {
	case SD, *SD:
		return nil, errors.New("SD marks a claim or array element, not a bare value")
	case map[string]any:
		return b.object(x, depth+1)
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			if sd, ok := e.(SD); ok {
				inner, err := b.value(sd.Value, depth+1)
				if err != nil {
					return nil, err
				}
				d, err := newDisclosure(b.o.rand, "", true, inner)
				if err != nil {
					return nil, err
				}
				b.disclosures = append(b.disclosures, d)
				out = append(out, map[string]any{"...": d.Digest()})
				continue
			}
			pe, err := b.value(e, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, pe)
		}
		return out, nil
	default:
		return v, nil
	}
}

func (b *builder) object(m map[string]any, depth int) (map[string]any, error) {
	out := make(map[string]any, len(m))
	var digests []string
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names) // a deterministic order of salts for a given rand
	for _, k := range names {
		if k == "_sd" || k == "..." {
			return nil, fmt.Errorf("%w: claim name %q is reserved", ErrCollision, k)
		}
		v := m[k]
		if sd, ok := v.(SD); ok {
			inner, err := b.value(sd.Value, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			d, err := newDisclosure(b.o.rand, k, false, inner)
			if err != nil {
				return nil, err
			}
			b.disclosures = append(b.disclosures, d)
			digests = append(digests, d.Digest())
			continue
		}
		pv, err := b.value(v, depth)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = pv
	}
	if len(digests) > 0 && b.o.decoys > 0 {
		var n [1]byte
		if _, err := io.ReadFull(b.o.rand, n[:]); err != nil {
			return nil, fmt.Errorf("decoys: %w", err)
		}
		for range 1 + int(n[0])%b.o.decoys {
			d, err := decoyDigest(b.o.rand)
			if err != nil {
				return nil, err
			}
			digests = append(digests, d)
		}
	}
	if len(digests) > 0 {
		// Sorted, so that the order does not reveal the claims' (§4.2.4.1).
		slices.Sort(digests)
		out["_sd"] = digests
	}
	return out, nil
}

// Confirmation returns the cnf claim value (RFC 7800) binding a credential
// to pub: {"jwk": <public JWK>}.
func Confirmation(pub *keys.PublicKey) (map[string]any, error) {
	b, err := pub.MarshalJWK()
	if err != nil {
		return nil, err
	}
	var jwk map[string]any
	if err := json.Unmarshal(b, &jwk); err != nil {
		return nil, err
	}
	return map[string]any{"jwk": jwk}, nil
}
