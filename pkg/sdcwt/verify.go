package sdcwt

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/keys"
)

// Parse reads an SD-CWT (tagged COSE_Sign1) with the disclosures of its
// sd_claims header. It checks the form and the typ, not the signature.
func Parse(b []byte) (*SDCWT, error) {
	msg, err := cosewire.Parse(b, MaxSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	u, err := cosewire.DecodeMap(msg.Unprotected)
	if err != nil {
		return nil, fmt.Errorf("%w: unprotected header: %w", ErrMalformed, err)
	}
	s := &SDCWT{msg: msg}
	for _, e := range u {
		if e.Key != int64(HeaderSDClaims) {
			continue
		}
		items, err := cosewire.Array(e.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: sd_claims: %w", ErrMalformed, err)
		}
		if len(items) == 0 {
			return nil, fmt.Errorf("%w: sd_claims is an empty array (it must be omitted)", ErrMalformed)
		}
		if len(items) > MaxDisclosures {
			return nil, fmt.Errorf("%w: %d disclosures (at most %d)", ErrMalformed, len(items), MaxDisclosures)
		}
		for i, it := range items {
			raw, err := cosewire.Bytes(it)
			if err != nil {
				return nil, fmt.Errorf("%w: sd_claims %d: %w", ErrMalformed, i, err)
			}
			d, err := ParseDisclosure(raw)
			if err != nil {
				return nil, fmt.Errorf("sd_claims %d: %w", i, err)
			}
			s.Disclosures = append(s.Disclosures, d)
		}
	}
	return s, nil
}

// protected decodes the protected header into label -> raw value.
func protected(msg *cosewire.Sign1) (map[int64][]byte, error) {
	es, err := cosewire.DecodeMap(msg.Protected)
	if err != nil {
		return nil, fmt.Errorf("%w: protected header: %w", ErrMalformed, err)
	}
	h := make(map[int64][]byte, len(es))
	for _, e := range es {
		if k, ok := e.Key.(int64); ok {
			h[k] = e.Value
		}
	}
	if _, crit := h[2]; crit {
		return nil, fmt.Errorf("%w: crit header parameters are not supported", ErrMalformed)
	}
	return h, nil
}

// verifySign1 checks msg's signature with ks (alg from the protected
// header, kid choosing keys).
func verifySign1(msg *cosewire.Sign1, h map[int64][]byte, ks keys.Set) error {
	alg, err := cosewire.Int(h[HeaderAlg])
	if err != nil {
		return fmt.Errorf("%w: alg", ErrMalformed)
	}
	var kid []byte
	if raw, ok := h[HeaderKID]; ok {
		if kid, err = cosewire.Bytes(raw); err != nil {
			return fmt.Errorf("%w: kid", ErrMalformed)
		}
	}
	if _, err := ks.Verify(kid, cose.Algorithm(alg), cosewire.SigStructure(msg.Protected, msg.Payload), msg.Signature); err != nil {
		return err
	}
	return nil
}

func typ(h map[int64][]byte) int64 {
	t, _ := cosewire.Int(h[HeaderTyp])
	return t
}

// resolver processes the payload with the disclosures (the draft's
// validation step 7).
type resolver struct {
	ds       []*Disclosure
	byDigest map[string]int
	seen     map[string]bool
	used     []bool
	paths    []string
}

func keyName(k any) string {
	switch x := k.(type) {
	case string:
		return x
	case int64:
		switch x {
		case ClaimIss:
			return "iss"
		case ClaimSub:
			return "sub"
		case ClaimAud:
			return "aud"
		case ClaimExp:
			return "exp"
		case ClaimNbf:
			return "nbf"
		case ClaimIat:
			return "iat"
		case ClaimCti:
			return "cti"
		case ClaimCnf:
			return "cnf"
		case ClaimVct:
			return "vct"
		case ClaimCnonce:
			return "cnonce"
		}
		return strconv.FormatInt(x, 10)
	}
	return fmt.Sprint(k)
}

func join(p, n string) string {
	if p == "" {
		return n
	}
	return p + "." + n
}

func (r *resolver) claim(dg []byte) (int, bool, error) {
	k := string(dg)
	if r.seen[k] {
		return 0, false, fmt.Errorf("%w: digest %s is listed more than once", ErrDisclosure, hex.EncodeToString(dg))
	}
	r.seen[k] = true
	i, ok := r.byDigest[k]
	return i, ok, nil
}

// value returns v processed, with map keys as names (claims for JSON
// output): redactions resolved, undisclosed ones and decoys removed.
func (r *resolver) value(v any, path string, depth int) (any, error) {
	if depth > 2*cosewire.MaxNestedLevels {
		return nil, fmt.Errorf("%w: nested too deeply", ErrMalformed)
	}
	switch x := v.(type) {
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if k == RedactedClaimKeys {
				continue
			}
			name := keyName(k)
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("%w: claim %q appears twice", ErrCollision, join(path, name))
			}
			pv, err := r.value(e, join(path, name), depth+1)
			if err != nil {
				return nil, err
			}
			out[name] = pv
		}
		if raw, ok := x[RedactedClaimKeys]; ok {
			list, ok := raw.([]any)
			if !ok {
				return nil, fmt.Errorf("%w: %s: redacted_claim_keys is not an array", ErrMalformed, path)
			}
			for _, e := range list {
				dg, ok := e.([]byte)
				if !ok {
					return nil, fmt.Errorf("%w: %s: a redacted claim hash is not a byte string", ErrMalformed, path)
				}
				i, found, err := r.claim(dg)
				if err != nil {
					return nil, err
				}
				if !found {
					continue
				}
				d := r.ds[i]
				r.used[i] = true
				if d.IsDecoy {
					continue
				}
				if d.IsElement {
					return nil, fmt.Errorf("%w: an array-element disclosure (%d) is referenced from redacted_claim_keys", ErrDisclosure, i+1)
				}
				name := keyName(d.Key)
				if _, exists := out[name]; exists {
					return nil, fmt.Errorf("%w: disclosed claim %q is already in the payload", ErrCollision, join(path, name))
				}
				r.paths[i] = join(path, name)
				pv, err := r.value(d.Value, join(path, name), depth+1)
				if err != nil {
					return nil, err
				}
				out[name] = pv
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for idx, e := range x {
			p := join(path, strconv.Itoa(idx))
			if tag, ok := e.(cbor.Tag); ok && tag.Number == TagRedactedElement {
				dg, ok := tag.Content.([]byte)
				if !ok {
					return nil, fmt.Errorf("%w: %s: a redacted element is not a byte string", ErrMalformed, p)
				}
				i, found, err := r.claim(dg)
				if err != nil {
					return nil, err
				}
				if !found {
					continue
				}
				d := r.ds[i]
				r.used[i] = true
				if d.IsDecoy {
					continue
				}
				if !d.IsElement {
					return nil, fmt.Errorf("%w: disclosure %d of a claim key is referenced as an array element", ErrDisclosure, i+1)
				}
				r.paths[i] = p
				pv, err := r.value(d.Value, p, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, pv)
				continue
			}
			pv, err := r.value(e, p, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, pv)
		}
		return out, nil
	case cbor.SimpleValue:
		return nil, fmt.Errorf("%w: %s: simple value %d outside a map key", ErrMalformed, path, x)
	default:
		return v, nil
	}
}

// resolve returns the processed claims and each disclosure's path.
func resolve(payload []byte, ds []*Disclosure) (map[string]any, map[any]any, []string, error) {
	var m map[any]any
	if err := cosewire.Dec.Unmarshal(payload, &m); err != nil || m == nil {
		return nil, nil, nil, fmt.Errorf("%w: payload is not a CBOR map", ErrMalformed)
	}
	r := &resolver{ds: ds, byDigest: map[string]int{}, seen: map[string]bool{}, used: make([]bool, len(ds)), paths: make([]string, len(ds))}
	for i, d := range ds {
		k := string(d.Digest())
		if _, dup := r.byDigest[k]; dup {
			return nil, nil, nil, fmt.Errorf("%w: disclosure %d is presented twice", ErrDisclosure, i+1)
		}
		r.byDigest[k] = i
	}
	out, err := r.value(m, "", 0)
	if err != nil {
		return nil, nil, nil, err
	}
	for i, d := range ds {
		if !r.used[i] {
			what := "an array element"
			if d.Key != nil {
				what = fmt.Sprintf("claim %q", keyName(d.Key))
			} else if d.IsDecoy {
				what = "a decoy"
			}
			return nil, nil, nil, fmt.Errorf("%w: disclosure %d (%s) is not referenced by the signed payload: tampered, or from another credential", ErrDisclosure, i+1, what)
		}
	}
	return out.(map[string]any), m, r.paths, nil
}

// Paths returns the claim path of each disclosure (decoys: "") and the
// processed claims, from the unverified payload (the holder's view).
func (s *SDCWT) Paths() ([]string, map[string]any, error) {
	claims, _, paths, err := resolve(s.msg.Payload, s.Disclosures)
	return paths, claims, err
}

// Select returns the SD-CWT with only the disclosures for the named paths
// (as sdjwt.SDJWT.Select); decoys are never presented.
func (s *SDCWT) Select(names []string) (*SDCWT, error) {
	paths, claims, err := s.Paths()
	if err != nil {
		return nil, err
	}
	out := &SDCWT{msg: s.msg}
	matched := map[string]bool{}
	for i, p := range paths {
		if p == "" {
			continue
		}
		for _, n := range names {
			if p == n || strings.HasPrefix(p, n+".") || strings.HasPrefix(n, p+".") {
				out.Disclosures = append(out.Disclosures, s.Disclosures[i])
				matched[n] = true
				break
			}
		}
	}
	for _, n := range names {
		if _, plain := claims[n]; !matched[n] && !plain {
			return nil, fmt.Errorf("%w: %q", ErrNoSuchClaim, n)
		}
	}
	return out, nil
}

// Presentation is what the SD-KBT binds the presentation to.
type Presentation struct {
	Audience, Nonce string
	IssuedAt        time.Time
}

// Present returns an SD-KBT signed by holder carrying s (with its current
// disclosures) in kcwt: payload {aud, iat, cnonce}.
func (s *SDCWT) Present(holder *keys.PrivateKey, p Presentation) ([]byte, error) {
	if p.Audience == "" || p.Nonce == "" {
		return nil, fmt.Errorf("present: an audience and a nonce are required")
	}
	if p.IssuedAt.IsZero() {
		p.IssuedAt = time.Now()
	}
	prot, err := cosewire.Enc.Marshal(map[any]any{
		int64(HeaderAlg): int64(holder.Alg), int64(HeaderTyp): int64(TypeKBT),
		int64(HeaderKCWT): cbor.RawMessage(s.Bytes()),
	})
	if err != nil {
		return nil, err
	}
	payload, err := cosewire.Enc.Marshal(map[any]any{
		int64(ClaimAud): p.Audience, int64(ClaimIat): p.IssuedAt.Unix(), int64(ClaimCnonce): []byte(p.Nonce),
	})
	if err != nil {
		return nil, err
	}
	sig, err := sign(holder, prot, payload)
	if err != nil {
		return nil, err
	}
	return cosewire.Build(prot, []byte{0xa0}, payload, sig), nil
}

// Result is a verified SD-KBT.
type Result struct {
	// Signed is the issuer-signed SD-CWT without its disclosures
	// (SDCWT.Signed).
	Signed    []byte
	Claims    map[string]any
	Disclosed []string
	Audience  string
	Nonce     string
}

type verifyOptions struct {
	aud, nonce string
	now        func() time.Time
	leeway     time.Duration
	maxKBAge   time.Duration
}

// VerifyOption configures Verify.
type VerifyOption func(*verifyOptions)

// WithAudience requires the SD-KBT's aud. Default: not checked.
func WithAudience(aud string) VerifyOption { return func(o *verifyOptions) { o.aud = aud } }

// WithNonce requires the SD-KBT's cnonce. Default: not checked.
func WithNonce(n string) VerifyOption { return func(o *verifyOptions) { o.nonce = n } }

// WithClock sets the time of the checks. Default time.Now.
func WithClock(now func() time.Time) VerifyOption { return func(o *verifyOptions) { o.now = now } }

// WithMaxKeyBindingAge bounds the SD-KBT's age. Default 5 minutes.
func WithMaxKeyBindingAge(d time.Duration) VerifyOption {
	return func(o *verifyOptions) { o.maxKBAge = d }
}

// Verify checks an SD-KBT (the draft's validation steps): the SD-CWT in
// kcwt (typ 293, signature with a pinned key, sd_alg SHA-256, disclosures,
// times), the SD-KBT (typ 294, signed by the cnf key, aud, cnonce, iat).
func Verify(kbt []byte, issuerKeys keys.Set, opts ...VerifyOption) (*Result, error) {
	o := verifyOptions{now: time.Now, leeway: time.Minute, maxKBAge: 5 * time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	now := o.now()
	kmsg, err := cosewire.Parse(kbt, MaxSize)
	if err != nil {
		return nil, fail(CheckFormat, fmt.Errorf("%w: %w", ErrMalformed, err))
	}
	kh, err := protected(kmsg)
	if err != nil {
		return nil, fail(CheckFormat, err)
	}
	if typ(kh) != TypeKBT {
		if _, isCWT := kh[HeaderSDClaims]; isCWT || typ(kh) == TypeSDCWT {
			return nil, fail(CheckKeyBinding, fmt.Errorf("%w: an SD-CWT without its key binding token", ErrKeyBinding))
		}
		return nil, fail(CheckType, fmt.Errorf("%w: the SD-KBT typ is not %d", ErrType, TypeKBT))
	}
	raw, ok := kh[HeaderKCWT]
	if !ok {
		return nil, fail(CheckFormat, fmt.Errorf("%w: the SD-KBT has no kcwt", ErrMalformed))
	}
	s, err := Parse(raw)
	if err != nil {
		return nil, fail(CheckFormat, err)
	}
	h, err := protected(s.msg)
	if err != nil {
		return nil, fail(CheckFormat, err)
	}
	if typ(h) != TypeSDCWT {
		return nil, fail(CheckType, fmt.Errorf("%w: the SD-CWT typ is not %d", ErrType, TypeSDCWT))
	}
	if raw, ok := h[HeaderSDAlg]; ok {
		if alg, err := cosewire.Int(raw); err != nil || alg != AlgSHA256 {
			return nil, fail(CheckFormat, fmt.Errorf("%w: sd_alg is not SHA-256", ErrMalformed))
		}
	}
	if err := verifySign1(s.msg, h, issuerKeys); err != nil {
		return nil, fail(CheckSignature, fmt.Errorf("%w: %w", ErrSignature, err))
	}
	claims, payload, paths, err := resolve(s.msg.Payload, s.Disclosures)
	if err != nil {
		return nil, fail(CheckDisclosures, err)
	}
	res := &Result{Claims: claims, Signed: s.Signed()}
	for _, p := range paths {
		if p != "" {
			res.Disclosed = append(res.Disclosed, p)
		}
	}
	if err := checkTimes(payload, now, o.leeway); err != nil {
		return nil, fail(CheckTime, err)
	}

	// The SD-KBT, signed by the cnf key.
	cnf, _ := payload[int64(ClaimCnf)].(map[any]any)
	ck, ok := cnf[int64(1)]
	if !ok {
		return nil, fail(CheckKeyBinding, fmt.Errorf("%w: the SD-CWT has no cnf COSE_Key", ErrKeyBinding))
	}
	kb, err := cosewire.Enc.Marshal(ck)
	if err != nil {
		return nil, fail(CheckKeyBinding, err)
	}
	holder, err := keys.ParsePublic(kb)
	if err != nil || len(holder) != 1 {
		return nil, fail(CheckKeyBinding, fmt.Errorf("%w: cnf is not a usable COSE_Key: %w", ErrKeyBinding, err))
	}
	delete(kh, HeaderKID) // the cnf key, not one the KBT names
	if err := verifySign1(kmsg, kh, holder); err != nil {
		return nil, fail(CheckKeyBinding, fmt.Errorf("%w: not signed by the credential's cnf key: %w", ErrKeyBinding, err))
	}
	var kp map[any]any
	if err := cosewire.Dec.Unmarshal(kmsg.Payload, &kp); err != nil || kp == nil {
		return nil, fail(CheckFormat, fmt.Errorf("%w: SD-KBT payload", ErrMalformed))
	}
	if _, ok := kp[int64(ClaimIss)]; ok {
		return nil, fail(CheckKeyBinding, fmt.Errorf("%w: an SD-KBT must not carry iss", ErrKeyBinding))
	}
	aud, _ := kp[int64(ClaimAud)].(string)
	nonce, _ := kp[int64(ClaimCnonce)].([]byte)
	if aud == "" {
		return nil, fail(CheckKeyBinding, fmt.Errorf("%w: the SD-KBT has no aud", ErrKeyBinding))
	}
	if o.aud != "" && aud != o.aud {
		return nil, fail(CheckAudience, fmt.Errorf("%w: %q, want %q", ErrAudience, aud, o.aud))
	}
	if o.nonce != "" && !bytes.Equal(nonce, []byte(o.nonce)) {
		return nil, fail(CheckNonce, fmt.Errorf("%w: the presentation was made for another request", ErrNonce))
	}
	iat, ok, err := numericDate(kp[int64(ClaimIat)])
	if err != nil || !ok {
		return nil, fail(CheckKeyBinding, fmt.Errorf("%w: the SD-KBT has no valid iat", ErrKeyBinding))
	}
	if now.Add(o.leeway).Before(iat) {
		return nil, fail(CheckTime, fmt.Errorf("%w: SD-KBT iat is in the future", ErrNotYetValid))
	}
	if now.Sub(iat) > o.maxKBAge+o.leeway {
		return nil, fail(CheckTime, fmt.Errorf("%w: the SD-KBT was made at %s (at most %s ago)", ErrExpired, iat.UTC().Format(time.RFC3339), o.maxKBAge))
	}
	res.Audience, res.Nonce = aud, string(nonce)
	return res, nil
}

func numericDate(v any) (time.Time, bool, error) {
	switch x := v.(type) {
	case nil:
		return time.Time{}, false, nil
	case int64:
		return time.Unix(x, 0), true, nil
	case uint64:
		if x > math.MaxInt64 {
			return time.Time{}, false, fmt.Errorf("%w: date out of range", ErrMalformed)
		}
		return time.Unix(int64(x), 0), true, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > 1<<53 {
			return time.Time{}, false, fmt.Errorf("%w: date is not a finite number below 2^53", ErrMalformed)
		}
		return time.Unix(int64(x), 0), true, nil
	}
	return time.Time{}, false, fmt.Errorf("%w: date is not a number", ErrMalformed)
}

func checkTimes(p map[any]any, now time.Time, leeway time.Duration) error {
	get := func(k int64) (time.Time, bool, error) { return numericDate(p[k]) }
	exp, hasExp, err := get(ClaimExp)
	if err != nil {
		return err
	}
	nbf, hasNbf, err := get(ClaimNbf)
	if err != nil {
		return err
	}
	iat, hasIat, err := get(ClaimIat)
	if err != nil {
		return err
	}
	switch {
	case hasExp && now.After(exp.Add(leeway)):
		return fmt.Errorf("%w: the credential expired at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
	case hasNbf && now.Add(leeway).Before(nbf):
		return fmt.Errorf("%w: nbf is %s", ErrNotYetValid, nbf.UTC().Format(time.RFC3339))
	case hasIat && now.Add(leeway).Before(iat):
		return fmt.Errorf("%w: iat is %s", ErrNotYetValid, iat.UTC().Format(time.RFC3339))
	case hasIat && hasExp && !iat.Before(exp):
		return fmt.Errorf("%w: iat is not before exp", ErrMalformed)
	}
	return nil
}
