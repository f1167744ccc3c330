package credential

import (
	"fmt"
	"sort"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/sdjwt"
)

// Verified is a verified presentation of a credential.
type Verified struct {
	// Issuer is the iss claim; Claims every claim the verifier sees (the
	// always-disclosed ones, the disclosed ones, iss, iat, exp, vct, cnf).
	Issuer string         `json:"issuer"`
	Claims map[string]any `json:"claims"`
	// Disclosed are the paths of the selectively disclosed claims.
	Disclosed []string `json:"disclosed"`
	// Audience and Nonce are those of the Key Binding JWT.
	Audience string `json:"audience"`
	Nonce    string `json:"nonce"`

	// issuerSigned is the presented credential's issuer-signed part (what
	// a registered statement covers).
	issuerSigned []byte
}

// Verify verifies a presentation with the pinned issuer keys (see
// sdjwt.Verify for the checks and opts), checks that it is a Trustfabric
// build credential, and that each of require's claims is disclosed with
// that value (compared as text; a nested claim is named by its path, e.g.
// policy.name).
func Verify(s *sdjwt.SDJWT, issuerKeys keys.Set, require map[string]string, opts ...sdjwt.VerifyOption) (*Verified, error) {
	opts = append([]sdjwt.VerifyOption{sdjwt.WithTypes(sdjwt.TypeVC)}, opts...)
	res, err := sdjwt.Verify(s, issuerKeys, opts...)
	if err != nil {
		return nil, err
	}
	v := &Verified{Claims: res.Claims, Disclosed: res.Disclosed, Audience: res.Audience, Nonce: res.Nonce, issuerSigned: []byte(s.IssuerJWT)}
	if check, err := v.checkClaims(require); err != nil {
		return nil, &sdjwt.VerifyError{Check: check, Err: err}
	}
	return v, nil
}

// Checks of pkg/credential, after those of the format's verifier.
const (
	CheckCredentialType = "credential-type"
	CheckRequire        = "require"
)

// checkClaims sets v.Issuer and checks that v is a Trustfabric build
// credential and that each of require's claims is disclosed with that
// value. It returns the name of the failing check.
func (v *Verified) checkClaims(require map[string]string) (string, error) {
	v.Issuer, _ = v.Claims["iss"].(string)
	if vct, _ := v.Claims["vct"].(string); vct != VCT || v.Issuer == "" {
		return CheckCredentialType, fmt.Errorf("%w: vct %q, iss %q", ErrNotCredential, v.Claims["vct"], v.Issuer)
	}
	names := make([]string, 0, len(require))
	for k := range require {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		got, ok := policy.ClaimAt(v.Claims, name)
		if !ok {
			return CheckRequire, fmt.Errorf("%w: %s is not disclosed", ErrRequirement, name)
		}
		if fmt.Sprint(got) != require[name] {
			return CheckRequire, fmt.Errorf("%w: %s is %q, not %q", ErrRequirement, name, fmt.Sprint(got), require[name])
		}
	}
	return "", nil
}
