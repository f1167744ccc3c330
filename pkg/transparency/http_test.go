package transparency_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/transparency"
)

// do sends one request without following redirects and returns the
// response with its body read.
func do(t *testing.T, method, url string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func wantRetryAfter(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 0 {
		t.Errorf("%s: Retry-After %q, want delay-seconds", what, resp.Header.Get("Retry-After"))
	}
}

// TestSCRAPIStatusAndHeaders walks the registration flows on the wire and
// checks each status code and header against SCRAPI (editor's copy after
// -10, docs/design/conformance.md): 303 with Location and Retry-After and an
// empty body; 302 with the same Location and Retry-After while pending; 200
// with the receipt, its media type and the entry's Location; 201 with
// Location; key set and single key as application/cbor; 404 "No such key".
func TestSCRAPIStatusAndHeaders(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	cose := map[string]string{"Content-Type": scrapi.MediaTypeCOSE}

	// 303 at once when the client prefers it.
	stmt := e.sign(t, "async")
	resp, body := do(t, "POST", e.srv.URL+"/entries", stmt, map[string]string{"Content-Type": scrapi.MediaTypeCOSE, "Prefer": "respond-async"})
	if resp.StatusCode != http.StatusSeeOther || len(body) != 0 || resp.Header.Get("Content-Length") != "0" {
		t.Fatalf("async POST = %d with %d bytes (Content-Length %q), want 303 with an empty body", resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/entries/") {
		t.Fatalf("303 Location %q", loc)
	}
	wantRetryAfter(t, "303", resp)

	// 302 (zero or more times), then 200 with the receipt.
	var receipt []byte
	for deadline := time.Now().Add(10 * time.Second); receipt == nil; {
		resp, body = do(t, "GET", e.srv.URL+loc, nil, map[string]string{"Accept": scrapi.MediaTypeCOSE, "Prefer": "wait=0"})
		switch resp.StatusCode {
		case http.StatusFound:
			if resp.Header.Get("Location") != loc || len(body) != 0 {
				t.Fatalf("302 Location %q with %d bytes, want %q and no body", resp.Header.Get("Location"), len(body), loc)
			}
			wantRetryAfter(t, "302", resp)
			if time.Now().After(deadline) {
				t.Fatal("still pending after 10 s")
			}
			time.Sleep(20 * time.Millisecond)
		case http.StatusOK:
			if ct := resp.Header.Get("Content-Type"); ct != scrapi.MediaTypeCOSE {
				t.Errorf("200 Content-Type %q", ct)
			}
			if resp.Header.Get("Location") != loc {
				t.Errorf("200 Location %q, want %q", resp.Header.Get("Location"), loc)
			}
			receipt = body
		default:
			t.Fatalf("GET %s = %d", loc, resp.StatusCode)
		}
	}
	r := verifyReceipt(t, stmt, receipt, e.svc.Keys())
	if r.Leaf != transparency.LeafConvention.String() {
		t.Errorf("receipt names leaf convention %q, want %q", r.Leaf, transparency.LeafConvention)
	}
	resp, _ = do(t, "GET", e.srv.URL+loc, nil, map[string]string{"Accept": scrapi.MediaTypeReceipt})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != scrapi.MediaTypeReceipt {
		t.Errorf("GET with Accept %s = %d %q", scrapi.MediaTypeReceipt, resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// 201 with Location when the receipt comes within the wait.
	resp, body = do(t, "POST", e.srv.URL+"/entries", e.sign(t, "sync"), cose)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Content-Type") != scrapi.MediaTypeCOSE || !strings.HasPrefix(resp.Header.Get("Location"), "/entries/") || len(body) == 0 {
		t.Fatalf("POST = %d %q Location %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Location"))
	}

	// Keys.
	resp, body = do(t, "GET", e.srv.URL+"/.well-known/scitt-keys", nil, map[string]string{"Accept": scrapi.MediaTypeCBOR})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != scrapi.MediaTypeCBOR {
		t.Fatalf("scitt-keys = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if _, err := keys.ParsePublic(body); err != nil {
		t.Fatal(err)
	}
	resp, _ = do(t, "GET", e.srv.URL+"/.well-known/scitt-keys/"+base64.RawURLEncoding.EncodeToString(r.KID), nil, map[string]string{"Accept": scrapi.MediaTypeCBOR})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != scrapi.MediaTypeCBOR {
		t.Fatalf("scitt-keys/{kid} = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, body = do(t, "GET", e.srv.URL+"/.well-known/scitt-keys/AAAA", nil, nil)
	if p, err := scrapi.ParseProblem(body); resp.StatusCode != http.StatusNotFound || err != nil || p.Title != "No such key" {
		t.Errorf("unknown kid = %d %+v %v", resp.StatusCode, p, err)
	}
}

// TestProblemDetailsWire: error bodies are RFC 9290 maps with exactly title
// (-1) and detail (-2), both text: no response-code (-4), which RFC 9290
// defines as a one-byte CoAP code and which used to carry the HTTP status.
func TestProblemDetailsWire(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	for _, tc := range []struct {
		method, path string
		body         []byte
		ct           string
		status       int
	}{
		{"POST", "/entries", []byte("hello"), scrapi.MediaTypeCOSE, 400},
		{"POST", "/entries", []byte("x"), "text/plain", 415},
		{"GET", "/entries/xyz", nil, "", 400},
		{"GET", "/entries/" + strings.Repeat("0", 64), nil, "", 404},
		{"GET", "/nothing-here", nil, "", 404},
	} {
		resp, body := do(t, tc.method, e.srv.URL+tc.path, tc.body, map[string]string{"Content-Type": tc.ct})
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != scrapi.MediaTypeProblemDetails {
			t.Errorf("%s %s = %d %q, want %d problem details", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.status)
			continue
		}
		var m map[int]any
		if err := cbor.Unmarshal(body, &m); err != nil {
			t.Fatalf("%s %s: body is not a CBOR map with integer keys: %v", tc.method, tc.path, err)
		}
		_, titleText := m[-1].(string)
		_, detailText := m[-2].(string)
		if len(m) != 2 || !titleText || !detailText {
			t.Errorf("%s %s: problem %v, want exactly text title (-1) and detail (-2)", tc.method, tc.path, m)
		}
	}
}

// TestConfigurationNamesLeaf: the configuration document names the leaf
// convention and structure, and the service's receipts verify under exactly
// what it names.
func TestConfigurationNamesLeaf(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	cfg, err := e.client.Configuration(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer != "https://ts.test" || cfg.LeafConvention != "ietf" || cfg.VDS != scitt.VDSRFC9162SHA256 {
		t.Fatalf("configuration %+v", cfg)
	}
	leaf, err := scitt.ParseLeafConvention(cfg.LeafConvention)
	if err != nil {
		t.Fatal(err)
	}
	stmt := e.sign(t, "leaf")
	reg, err := e.client.Register(t.Context(), stmt)
	if err != nil {
		t.Fatal(err)
	}
	r, err := scitt.ParseReceipt(reg.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.VerifyInclusion(stmt, e.svc.Keys(), leaf); err != nil {
		t.Fatalf("receipt under the published convention: %v", err)
	}
}
