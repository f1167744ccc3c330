package workload

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// TestHTTPClientAddsIdentity: the client from Credentials.HTTPClient sends
// the WIT and a fresh WPT for the request's target, which a WIMSE
// authenticator accepts once and refuses when replayed.
func TestHTTPClientAddsIdentity(t *testing.T) {
	issuer, _ := keys.Generate(cose.AlgorithmES256)
	key, _ := keys.Generate(cose.AlgorithmES256)
	id := wimse.RequireIdentifier("spiffe://ci.example.org/github/acme/widgets")
	wit, err := wimse.MintWIT(issuer, wimse.WITClaims{Subject: id, Expiry: time.Now().Add(5 * time.Minute), Key: key.PublicJWK()})
	if err != nil {
		t.Fatal(err)
	}
	bundles := wimse.Bundles{{TrustDomain: "ci.example.org", Keys: []jose.JSONWebKey{issuer.PublicJWK()}}}
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Clone())
	}))
	defer srv.Close()
	auth := &wimse.Authenticator{Bundles: bundles, Origins: []string{srv.URL}, Replay: wimse.NewReplayCache(16)}
	c := (&Credentials{WIT: wit, Key: key, ID: id}).HTTPClient(&http.Client{Timeout: 5 * time.Second})
	for range 2 {
		resp, err := c.Post(srv.URL+"/entries", "application/cose", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if len(seen) != 2 || seen[0].Get(wimse.HeaderWIT) != wit || seen[0].Get(wimse.HeaderWPT) == seen[1].Get(wimse.HeaderWPT) {
		t.Fatalf("want the WIT and a fresh WPT per request, got %v", seen)
	}
	req := httptest.NewRequest(http.MethodPost, srv.URL+"/entries", nil)
	req.Header = seen[0]
	got, err := auth.Authenticate(req)
	if err != nil || got.WIT.ID != id {
		t.Fatalf("authenticator refused the client's headers: %v", err)
	}
	if _, err := auth.Authenticate(req); !errors.Is(err, wimse.ErrReplay) {
		t.Fatalf("replayed proof: err = %v, want ErrReplay", err)
	}
}

func TestExchangeRefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"token expired"}`))
	}))
	defer srv.Close()
	key, _ := keys.Generate(cose.AlgorithmES256)
	_, err := Exchange(t.Context(), srv.URL, "not-a-token", key)
	var xe *ExchangeError
	if !errors.Is(err, ErrExchange) || !errors.As(err, &xe) || xe.Code != "invalid_grant" {
		t.Fatalf("err = %v, want an *ExchangeError invalid_grant wrapping ErrExchange", err)
	}
	if _, err := Obtain(t.Context(), ObtainOptions{Provider: "nosuch"}); !errors.Is(err, ErrNoProvider) {
		t.Fatalf("unknown provider: err = %v, want ErrNoProvider", err)
	}
}
