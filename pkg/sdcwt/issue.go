package sdcwt

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"sort"

	"github.com/fxamacker/cbor/v2"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/keys"
)

// SDCWT is an issued SD-CWT: its signed parts, byte-exact, and the
// disclosures it carries in sd_claims.
type SDCWT struct {
	msg         *cosewire.Sign1
	Disclosures []*Disclosure
}

// Bytes encodes the SD-CWT (tagged COSE_Sign1) with its Disclosures in
// sd_claims (omitted when there are none). The protected header, payload and
// signature are the issued bytes.
func (s *SDCWT) Bytes() []byte {
	u := []byte{0xa0}
	if len(s.Disclosures) > 0 {
		var arr []byte
		arr = cosewire.AppendHead(arr, 4, uint64(len(s.Disclosures)))
		for _, d := range s.Disclosures {
			arr = cosewire.AppendBstr(arr, d.Raw)
		}
		u = cosewire.AppendHead(nil, 5, 1)
		u = cosewire.AppendHead(u, 0, HeaderSDClaims)
		u = append(u, arr...)
	}
	return cosewire.Build(s.msg.Protected, u, s.msg.Payload, s.msg.Signature)
}

// Signed returns the issuer-signed SD-CWT without disclosures (its
// unprotected header {}): the bytes every presentation of it carries
// unchanged apart from sd_claims.
func (s *SDCWT) Signed() []byte { return s.msg.Stripped() }

type issueOptions struct {
	decoys int
	rand   io.Reader
}

// IssueOption configures Issue.
type IssueOption func(*issueOptions)

// WithDecoys adds between 1 and n decoys (each with a [salt] disclosure,
// as the draft's Decoy Digests section says) to every map that has
// redacted keys. Default 0.
func WithDecoys(n int) IssueOption { return func(o *issueOptions) { o.decoys = n } }

// WithRand sets the source of salts. Default crypto/rand.
func WithRand(r io.Reader) IssueOption { return func(o *issueOptions) { o.rand = r } }

// Issue signs an SD-CWT over claims (keys: int for registered CWT claims,
// string for others), with values marked SD redacted, cnf set to holder.
// The result carries every disclosure (the holder's copy).
func Issue(key *keys.PrivateKey, holder *keys.PublicKey, claims map[any]any, opts ...IssueOption) (*SDCWT, error) {
	o := issueOptions{rand: rand.Reader}
	for _, opt := range opts {
		opt(&o)
	}
	coseKey, err := holder.MarshalCOSEKey()
	if err != nil {
		return nil, fmt.Errorf("sd-cwt: holder key: %w", err)
	}
	b := &builder{o: o}
	payload, err := b.object(claims, 0)
	if err != nil {
		return nil, fmt.Errorf("sd-cwt: %w", err)
	}
	payload[int64(ClaimCnf)] = map[any]any{int64(1): cbor.RawMessage(coseKey)}
	pb, err := cosewire.Enc.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("sd-cwt: payload: %w", err)
	}
	prot, err := cosewire.Enc.Marshal(map[any]any{
		int64(HeaderAlg): int64(key.Alg), int64(HeaderTyp): int64(TypeSDCWT),
		int64(HeaderSDAlg): int64(AlgSHA256), int64(HeaderKID): key.KID,
	})
	if err != nil {
		return nil, err
	}
	sig, err := sign(key, prot, pb)
	if err != nil {
		return nil, err
	}
	s := &SDCWT{Disclosures: b.disclosures}
	s.msg, err = cosewire.Parse(cosewire.Build(prot, []byte{0xa0}, pb, sig), MaxSize)
	return s, err
}

func sign(key *keys.PrivateKey, prot, payload []byte) ([]byte, error) {
	signer, err := key.COSESigner()
	if err != nil {
		return nil, err
	}
	sig, err := signer.Sign(rand.Reader, cosewire.SigStructure(prot, payload))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return sig, nil
}

type builder struct {
	o           issueOptions
	disclosures []*Disclosure
}

func (b *builder) disclose(key any, element bool, v any) (*Disclosure, error) {
	salt := make([]byte, 16)
	if _, err := io.ReadFull(b.o.rand, salt); err != nil {
		return nil, err
	}
	arr := []any{salt}
	if v != nil || element || key != nil {
		arr = append(arr, v)
	}
	if key != nil {
		arr = append(arr, key)
	}
	raw, err := cosewire.Enc.Marshal(arr)
	if err != nil {
		return nil, err
	}
	d, err := ParseDisclosure(raw)
	if err != nil {
		return nil, err
	}
	b.disclosures = append(b.disclosures, d)
	return d, nil
}

func normKey(k any) (any, error) {
	switch x := k.(type) {
	case int:
		return int64(x), nil
	case int64, string:
		return x, nil
	}
	return nil, fmt.Errorf("claim key %v (%T): want an integer or text", k, k)
}

func (b *builder) value(v any, depth int) (any, error) {
	if depth > cosewire.MaxNestedLevels {
		return nil, fmt.Errorf("claims nest deeper than %d levels", cosewire.MaxNestedLevels)
	}
	switch x := v.(type) {
	case SD:
		return nil, fmt.Errorf("SD marks a claim or an array element, not a bare value")
	case map[any]any:
		return b.object(x, depth+1)
	case map[string]any:
		m := make(map[any]any, len(x))
		for k, e := range x {
			m[k] = e
		}
		return b.object(m, depth+1)
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			if sd, ok := e.(SD); ok {
				inner, err := b.value(sd.Value, depth+1)
				if err != nil {
					return nil, err
				}
				d, err := b.disclose(nil, true, inner)
				if err != nil {
					return nil, err
				}
				out = append(out, cbor.Tag{Number: TagRedactedElement, Content: d.Digest()})
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

func (b *builder) object(m map[any]any, depth int) (map[any]any, error) {
	out := make(map[any]any, len(m))
	var digests [][]byte
	ks := make([]any, 0, len(m))
	for k := range m {
		nk, err := normKey(k)
		if err != nil {
			return nil, err
		}
		ks = append(ks, nk)
	}
	sort.Slice(ks, func(i, j int) bool { return fmt.Sprint(ks[i]) < fmt.Sprint(ks[j]) })
	for _, k := range ks {
		v, ok := m[k]
		if !ok {
			if i, isInt := k.(int64); isInt {
				v = m[int(i)]
			}
		}
		if sd, ok := v.(SD); ok {
			inner, err := b.value(sd.Value, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%v: %w", k, err)
			}
			d, err := b.disclose(k, false, inner)
			if err != nil {
				return nil, err
			}
			digests = append(digests, d.Digest())
			continue
		}
		pv, err := b.value(v, depth)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", k, err)
		}
		out[k] = pv
	}
	if len(digests) > 0 && b.o.decoys > 0 {
		var n [1]byte
		if _, err := io.ReadFull(b.o.rand, n[:]); err != nil {
			return nil, err
		}
		for range 1 + int(n[0])%b.o.decoys {
			d, err := b.disclose(nil, false, nil)
			if err != nil {
				return nil, err
			}
			digests = append(digests, d.Digest())
		}
	}
	if len(digests) > 0 {
		sort.Slice(digests, func(i, j int) bool { return bytes.Compare(digests[i], digests[j]) < 0 })
		list := make([]any, len(digests))
		for i, d := range digests {
			list[i] = d
		}
		out[RedactedClaimKeys] = list
	}
	return out, nil
}
