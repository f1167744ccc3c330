package attesttest

import (
	"context"
	"fmt"
	"net/http"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// WITVerifier implements transparency.WITVerifier over WIT bundles: a
// statement carrying a "wit" header is accepted when the WIT verifies
// against Bundles now, the statement's iss is the WIT's sub, and then only
// under the WIT's confirmation key (cnf.jwk). pkg/transparency defines the
// seam but ships no implementation yet; this one is what the in-process
// environment (and quickstart) runs.
type WITVerifier struct {
	Bundles wimse.BundleSource
}

// VerifyWIT implements transparency.WITVerifier. Errors wrap
// transparency.ErrUntrustedIssuer and the wimse sentinel.
func (v *WITVerifier) VerifyWIT(_ context.Context, st *scitt.Statement) (scitt.KeySet, error) {
	wit, err := wimse.ParseWIT(st.WIT, v.Bundles)
	if err != nil {
		return nil, fmt.Errorf("%w: wit header: %w", transparency.ErrUntrustedIssuer, err)
	}
	if st.Issuer != wit.ID.String() {
		return nil, fmt.Errorf("%w: %w: iss %q, WIT sub %q", transparency.ErrUntrustedIssuer, wimse.ErrIssuerMismatch, st.Issuer, wit.ID)
	}
	alg, ok := coseAlgs[jose.SignatureAlgorithm(wit.Key.Algorithm)]
	if !ok {
		return nil, fmt.Errorf("%w: %w: cnf.jwk alg %s", transparency.ErrUntrustedIssuer, wimse.ErrUnsupportedAlgorithm, wit.Key.Algorithm)
	}
	return scitt.KeySet{{Key: wit.Key.Key, Alg: alg}}, nil
}

var coseAlgs = map[jose.SignatureAlgorithm]cose.Algorithm{
	jose.ES256: cose.AlgorithmES256, jose.ES384: cose.AlgorithmES384,
	jose.ES512: cose.AlgorithmES512, jose.PS256: cose.AlgorithmPS256,
}

// RequireWIMSE makes registrations (POST /entries) carry a valid
// Workload-Identity-Token and Workload-Proof-Token (design.md §1 step 4);
// reads stay open. Failures get auth's 400 problem response.
func RequireWIMSE(h http.Handler, auth *wimse.Authenticator) http.Handler {
	protected := auth.Middleware(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/entries" {
			protected.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
