package transparency

import (
	"net/http"

	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// RequireWIMSE makes registrations (POST /entries) carry a valid
// Workload-Identity-Token and Workload-Proof-Token (design.md §1 step 4),
// verified by auth; reads stay open. A request without them gets 401 with a
// WWW-Authenticate challenge and SCRAPI's concise problem details (RFC 9290)
// naming the cause (429 or 503 when the replay cache refuses); a verified
// identity is put in the request context (wimse.FromContext).
func RequireWIMSE(h http.Handler, auth *wimse.Authenticator) http.Handler {
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
