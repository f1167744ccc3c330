package scrapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

func problem(w http.ResponseWriter, status int, title string) {
	b, _ := (&Problem{Title: title, Detail: "because", Status: status}).MarshalCBOR()
	w.Header().Set("Content-Type", MediaTypeProblemDetails)
	w.WriteHeader(status)
	w.Write(b)
}

func fastClient(t *testing.T, url string, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(url, append([]Option{WithBackoff(time.Millisecond, 5*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFlows drives the client through each registration flow SCRAPI allows.
func TestFlows(t *testing.T) {
	receipt := []byte{0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40}
	const id = "abc123"
	var polls atomic.Int32
	mux := http.NewServeMux()
	// 201 directly.
	mux.HandleFunc("POST /direct/entries", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != MediaTypeCOSE {
			problem(w, 415, "Unsupported Media Type")
			return
		}
		w.Header().Set("Location", "/direct/entries/"+id)
		w.WriteHeader(201)
		w.Write(receipt)
	})
	// 303 → 302 (twice, Retry-After 0) → 200.
	mux.HandleFunc("POST /async/entries", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/async/entries/"+id)
		w.WriteHeader(303)
	})
	mux.HandleFunc("GET /async/entries/{id}", func(w http.ResponseWriter, r *http.Request) {
		if polls.Add(1) <= 2 {
			w.Header().Set("Location", r.URL.Path)
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(302)
			return
		}
		w.Header().Set("Content-Type", MediaTypeCOSE)
		w.Write(receipt)
	})
	// Older servers: 202 + operation body, then operation polling.
	var opPolls atomic.Int32
	mux.HandleFunc("POST /legacy/entries", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(202)
		json.NewEncoder(w).Encode(map[string]string{"operationId": "op1", "status": "running"})
	})
	mux.HandleFunc("GET /legacy/operations/op1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		st := map[string]string{"operationId": "op1", "status": "running"}
		if opPolls.Add(1) > 1 {
			st = map[string]string{"operationId": "op1", "status": "succeeded", "entryId": id}
		}
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("GET /legacy/entries/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", MediaTypeCOSE)
		w.Write(receipt)
	})
	// Transient 503 twice, then 201.
	var fails atomic.Int32
	mux.HandleFunc("POST /flaky/entries", func(w http.ResponseWriter, r *http.Request) {
		if fails.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			problem(w, 503, "Service Unavailable")
			return
		}
		w.Header().Set("Location", "/flaky/entries/"+id)
		w.WriteHeader(201)
		w.Write(receipt)
	})
	mux.HandleFunc("POST /reject/entries", func(w http.ResponseWriter, r *http.Request) { problem(w, 400, "Bad Signature") })
	mux.HandleFunc("POST /pending/entries", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/pending/entries/"+id)
		w.WriteHeader(303)
	})
	mux.HandleFunc("GET /pending/entries/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", r.URL.Path)
		w.WriteHeader(302) // no Retry-After: the client backs off
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, prefix := range []string{"/direct", "/async", "/legacy", "/flaky"} {
		t.Run(prefix, func(t *testing.T) {
			reg, err := fastClient(t, srv.URL+prefix).Register(t.Context(), []byte("stmt"))
			if err != nil {
				t.Fatal(err)
			}
			if string(reg.Receipt) != string(receipt) || reg.EntryID != id {
				t.Fatalf("registration = %+v, want the receipt and entry %s", reg, id)
			}
		})
	}
	t.Run("rejected", func(t *testing.T) {
		_, err := fastClient(t, srv.URL+"/reject").Register(t.Context(), []byte("stmt"))
		var p *Problem
		if !errors.As(err, &p) || p.Status != 400 || p.Title != "Bad Signature" || p.Detail != "because" {
			t.Fatalf("error = %v, want the 400 problem", err)
		}
	})
	t.Run("cancelled while pending", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := fastClient(t, srv.URL+"/pending").Register(ctx, []byte("stmt"))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("retries exhausted", func(t *testing.T) {
		fails.Store(-100)
		_, err := fastClient(t, srv.URL+"/flaky", WithRetries(1)).Register(t.Context(), []byte("stmt"))
		var p *Problem
		if !errors.As(err, &p) || p.Status != 503 {
			t.Fatalf("error = %v, want the 503 problem", err)
		}
	})
}

func TestNewClientRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "localhost:8080", "http://"} {
		if _, err := NewClient(u); err == nil {
			t.Errorf("NewClient(%q) accepted", u)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{{"3", 3 * time.Second, true}, {"0", 0, true}, {"99999", time.Minute, true}, {"soon", 0, false}, {"", 0, false}} {
		resp := &http.Response{Header: http.Header{}}
		if tc.v != "" {
			resp.Header.Set("Retry-After", tc.v)
		}
		got, ok := retryAfter(resp)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

// TestProblemEncoding: a problem is encoded as {-1: title, -2: detail} only;
// the HTTP status never goes into response-code (-4), which RFC 9290 types
// as a one-byte CoAP code. Bodies from other servers with -4 (a CoAP code,
// or an HTTP status from older Trustfabric) still parse.
func TestProblemEncoding(t *testing.T) {
	b, err := (&Problem{Title: "Not Found", Detail: "x", Status: 404}).MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0xa2, 0x20, 0x69, 'N', 'o', 't', ' ', 'F', 'o', 'u', 'n', 'd', 0x21, 0x61, 'x'}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoded % x, want % x", b, want)
	}
	for name, body := range map[string][]byte{
		"CoAP 4.04":          {0xa3, 0x20, 0x61, 't', 0x21, 0x61, 'd', 0x23, 0x18, 0x84},
		"old HTTP status":    {0xa3, 0x20, 0x61, 't', 0x21, 0x61, 'd', 0x23, 0x19, 0x01, 0x90},
		"instance, base-uri": {0xa3, 0x20, 0x61, 't', 0x22, 0x61, '/', 0x24, 0x61, '/'},
	} {
		p, err := ParseProblem(body)
		if err != nil || p.Title != "t" || p.Status != 0 {
			t.Errorf("%s: %+v, %v", name, p, err)
		}
	}
	if _, err := ParseProblem([]byte{0xa1, 0x20, 0x01}); !errors.Is(err, ErrBadProblem) {
		t.Errorf("integer title: %v, want ErrBadProblem", err)
	}
}

// TestClassFallback: status codes the client does not name are read by
// their class (SCRAPI §2): 307 at registration and 202 while pending (the
// -11 change) lead to the Location; 204 without a receipt is an error.
func TestClassFallback(t *testing.T) {
	receipt := []byte{0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40}
	var polls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /a/entries", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/a/entries/e1")
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("GET /a/entries/e1", func(w http.ResponseWriter, r *http.Request) {
		if polls.Add(1) <= 2 {
			w.Header().Set("Location", r.URL.Path)
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", MediaTypeCOSE)
		w.Write(receipt)
	})
	mux.HandleFunc("POST /b/entries", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	var accept string
	mux.HandleFunc("GET /b/.well-known/scitt-keys", func(w http.ResponseWriter, r *http.Request) {
		accept = r.Header.Get("Accept")
		w.Write([]byte{0x80})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	reg, err := fastClient(t, srv.URL+"/a").Register(t.Context(), []byte("stmt"))
	if err != nil || !bytes.Equal(reg.Receipt, receipt) || reg.EntryID != "e1" || polls.Load() != 3 {
		t.Fatalf("307 then 202 twice: %+v, %v (%d polls)", reg, err, polls.Load())
	}
	if _, err := fastClient(t, srv.URL+"/b").Register(t.Context(), []byte("stmt")); !errors.Is(err, ErrProtocol) {
		t.Fatalf("204: %v, want ErrProtocol", err)
	}
	// SCRAPI §2.1: clients MUST send Accept: application/cbor for the keys.
	_, _ = fastClient(t, srv.URL+"/b").Keys(t.Context())
	if !strings.Contains(accept, MediaTypeCBOR) {
		t.Errorf("key set request Accept %q", accept)
	}
}

func TestParseConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name, ct string
		body     []byte
		want     Configuration
		ok       bool
	}{
		{"cbor", MediaTypeCBOR, mustCBOR(t, map[string]any{"issuer": "https://ts", "leaf_convention": "ietf", "verifiable_data_structure": 1, "x": []int{1}}),
			Configuration{Issuer: "https://ts", LeafConvention: "ietf", VDS: 1}, true},
		{"ccf legacy", MediaTypeCBOR, mustCBOR(t, map[string]any{"issuer": "ccf", "jwks_uri": "https://x/jwks"}), Configuration{Issuer: "ccf"}, true},
		{"json", "application/json", []byte(`{"issuer":"j","leaf_convention":"direct","verifiable_data_structure":2}`), Configuration{Issuer: "j", LeafConvention: "direct", VDS: 2}, true},
		{"leaf not text", MediaTypeCBOR, mustCBOR(t, map[string]any{"leaf_convention": 1}), Configuration{}, false},
		{"vds not int", MediaTypeCBOR, mustCBOR(t, map[string]any{"verifiable_data_structure": "1"}), Configuration{}, false},
		{"int keys", MediaTypeCBOR, mustCBOR(t, map[int]any{1: "x"}), Configuration{}, false},
		{"not a map", MediaTypeCBOR, []byte{0x80}, Configuration{}, false},
	} {
		c, err := ParseConfiguration(tc.body, tc.ct)
		if tc.ok != (err == nil) || (err == nil && *c != tc.want) || (err != nil && !errors.Is(err, ErrBadConfiguration)) {
			t.Errorf("%s: %+v, %v", tc.name, c, err)
		}
	}
}

func mustCBOR(t *testing.T, v any) []byte {
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
