package transparency_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// TestRegistrationAuditLog: every registration is logged with its entry id
// and, when the request was authenticated with WIMSE headers, the caller's
// workload identifier.
func TestRegistrationAuditLog(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	caller := wimse.RequireIdentifier("spiffe://ci.example.org/github/acme/widgets")
	h := e.svc.Handler(transparency.HandlerOptions{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := &wimse.Identity{WIT: &wimse.WIT{ID: caller}}
		h.ServeHTTP(w, r.WithContext(wimse.NewContext(r.Context(), id)))
	}))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/entries", scrapi.MediaTypeCOSE, bytes.NewReader(e.sign(t, "audited")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d", resp.StatusCode)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"registered"`) || !strings.Contains(logs, `"caller":"`+caller.String()+`"`) {
		t.Fatalf("no audit line with the caller:\n%s", logs)
	}
}
