package transparency

import (
	"net/http"

	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// RequireWIMSE makes registrations (POST /entries) carry a valid
// Workload-Identity-Token and Workload-Proof-Token (design.md §1 step 4),
// verified by auth; reads stay open. A request without them gets 401 with
// SCRAPI's concise problem details (RFC 9290) naming the cause; a verified
// identity is put in the request context (wimse.FromContext).
func RequireWIMSE(h http.Handler, auth *wimse.Authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/entries" {
			h.ServeHTTP(w, r)
			return
		}
		id, err := auth.Authenticate(r)
		if err != nil {
			p := &scrapi.Problem{Title: "Workload identity required",
				Detail: "registration needs valid Workload-Identity-Token and Workload-Proof-Token headers: " + err.Error()}
			body, merr := p.MarshalCBOR()
			if merr != nil {
				http.Error(w, p.Detail, http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", scrapi.MediaTypeProblemDetails)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write(body)
			return
		}
		h.ServeHTTP(w, r.WithContext(wimse.NewContext(r.Context(), id)))
	})
}
