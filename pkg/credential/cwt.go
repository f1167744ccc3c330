package credential

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/sdcwt"
	"github.com/trustfabric/trustfabric/pkg/sdjwt"
)

// IssueCWT issues the credential of Issue as an SD-CWT (pkg/sdcwt,
// draft-ietf-spice-sd-cwt): the same claims, with iss, iat, exp and vct
// under their CWT claim keys (1, 6, 4, 11) and cnf (8) a COSE_Key. The
// result carries every disclosure (the holder's copy).
func IssueCWT(d *policy.Decision, issuer *keys.PrivateKey, holder *keys.PublicKey, opts ...Option) (*sdcwt.SDCWT, error) {
	o := options{policyName: "policy", validity: DefaultValidity, decoys: DefaultDecoys, now: time.Now, rand: rand.Reader}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("credential: %w", err)
		}
	}
	if o.issuer == "" {
		o.issuer = DefaultIssuer(issuer)
	}
	claims, err := Claims(d, o.policyName)
	if err != nil {
		return nil, err
	}
	c := make(map[any]any, len(claims)+4)
	for k, v := range claims {
		c[k] = toCWT(v)
	}
	now := o.now()
	c[sdcwt.ClaimIss] = o.issuer
	c[sdcwt.ClaimIat] = now.Unix()
	c[sdcwt.ClaimExp] = now.Add(o.validity).Unix()
	c[sdcwt.ClaimVct] = VCT
	s, err := sdcwt.Issue(issuer, holder, c, sdcwt.WithDecoys(o.decoys), sdcwt.WithRand(o.rand))
	if err != nil {
		return nil, fmt.Errorf("credential: %w", err)
	}
	return s, nil
}

// toCWT turns the sdjwt.SD marks of a claim value into sdcwt.SD marks.
func toCWT(v any) any {
	switch x := v.(type) {
	case sdjwt.SD:
		return sdcwt.SD{Value: toCWT(x.Value)}
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = toCWT(e)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toCWT(e)
		}
		return out
	}
	return v
}

// VerifyCWT verifies an SD-CWT presentation (an SD-KBT) with the pinned
// issuer keys (see sdcwt.Verify), then applies the checks of Verify: a
// Trustfabric build credential (vct, iss), and require's values. Failures
// are *sdcwt.VerifyError naming the check.
func VerifyCWT(kbt []byte, issuerKeys keys.Set, require map[string]string, opts ...sdcwt.VerifyOption) (*Verified, error) {
	res, err := sdcwt.Verify(kbt, issuerKeys, opts...)
	if err != nil {
		return nil, err
	}
	v := &Verified{Claims: res.Claims, Disclosed: res.Disclosed, Audience: res.Audience, Nonce: res.Nonce, issuerSigned: res.Signed}
	if check, err := v.checkClaims(require); err != nil {
		return nil, &sdcwt.VerifyError{Check: check, Err: err}
	}
	return v, nil
}
