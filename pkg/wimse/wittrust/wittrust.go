// Package wittrust plugs WIT-bound statements into the Transparency Service's
// registration policy through its WITVerifier seam (design §2.4, §3): a
// statement whose protected "wit" header carries a Workload Identity Token is
// accepted when the WIT verifies against a trusted identity bundle at
// registration time (now), its sub equals the statement's iss, and the
// statement is signed with the WIT's cnf.jwk (the returned key).
//
// It is a separate package so that pkg/wimse does not depend on the
// Transparency Service.
package wittrust

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/veraison/go-cose"
)

// Verifier implements transparency.WITVerifier over trusted WIT bundles.
type Verifier struct {
	Bundles wimse.BundleSource
	// Now returns the registration time; time.Now when nil.
	Now func() time.Time
}

var _ transparency.WITVerifier = (*Verifier)(nil)

// VerifyWIT returns the WIT's confirmation key as the only key the statement
// may be signed with. Errors wrap transparency.ErrUntrustedIssuer and the
// wimse sentinel naming the reason.
func (v *Verifier) VerifyWIT(_ context.Context, st *scitt.Statement) (scitt.KeySet, error) {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	wit, err := wimse.ParseWIT(st.WIT, v.Bundles, wimse.WithTime(now()))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", transparency.ErrUntrustedIssuer, err)
	}
	if st.Issuer != wit.ID.String() {
		return nil, fmt.Errorf("%w: %w: iss %q, WIT sub %q", transparency.ErrUntrustedIssuer, wimse.ErrIssuerMismatch, st.Issuer, wit.ID)
	}
	var alg cose.Algorithm
	switch jose.SignatureAlgorithm(wit.Key.Algorithm) {
	case jose.ES256:
		alg = cose.AlgorithmES256
	case jose.ES384:
		alg = cose.AlgorithmES384
	case jose.ES512:
		alg = cose.AlgorithmES512
	case jose.PS256:
		alg = cose.AlgorithmPS256
	default:
		return nil, fmt.Errorf("%w: %w: cnf.jwk alg %s", transparency.ErrUntrustedIssuer, wimse.ErrUnsupportedAlgorithm, wit.Key.Algorithm)
	}
	if st.Alg != alg {
		return nil, fmt.Errorf("%w: %w: statement alg is not cnf.jwk's %s", transparency.ErrUntrustedIssuer, wimse.ErrUnsupportedAlgorithm, wit.Key.Algorithm)
	}
	return scitt.KeySet{{Key: wit.Key.Key, Alg: alg}}, nil
}

// RequireOnRegistration makes registrations (POST /entries) carry a valid
// Workload-Identity-Token and Workload-Proof-Token (design.md §1 step 4),
// verified by auth; reads stay open. A request without them gets 401 with a
// WWW-Authenticate challenge and SCRAPI's concise problem details (RFC 9290)
// naming the cause (429 or 503 when the replay cache refuses); a verified
// identity is put in the request context (wimse.FromContext).
func RequireOnRegistration(h http.Handler, auth *wimse.Authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/entries" {
			h.ServeHTTP(w, r)
			return
		}
		id, err := auth.Authenticate(r)
		if err != nil {
			// 401 with a WWW-Authenticate challenge (wimse.AuthScheme), or
			// 429/503 with Retry-After: auth.Challenge sets the headers.
			status := auth.Challenge(w, err)
			p := &scrapi.Problem{Title: "Workload identity required",
				Detail: "registration needs valid Workload-Identity-Token and Workload-Proof-Token headers: " + err.Error()}
			body, merr := p.MarshalCBOR()
			if merr != nil {
				http.Error(w, p.Detail, status)
				return
			}
			w.Header().Set("Content-Type", scrapi.MediaTypeProblemDetails)
			w.WriteHeader(status)
			_, _ = w.Write(body)
			return
		}
		h.ServeHTTP(w, r.WithContext(wimse.NewContext(r.Context(), id)))
	})
}
