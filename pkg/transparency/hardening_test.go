package transparency_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// Issue 11 item 8: postEntry took a registration slot before reading the
// body, so idle clients that never finish their body made every
// registration 503.
func TestSlowBodiesDoNotHoldRegistrationSlots(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	srv := httptest.NewServer(e.svc.Handler(transparency.HandlerOptions{MaxInflight: 2, BodyTimeout: 500 * time.Millisecond}))
	defer srv.Close()
	var slow []net.Conn
	for range 8 {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("POST /entries HTTP/1.1\r\nHost: ts\r\nContent-Type: application/cose\r\nContent-Length: 1000\r\n\r\nabc")); err != nil {
			t.Fatal(err)
		}
		slow = append(slow, c)
	}
	time.Sleep(100 * time.Millisecond) // the server reads their headers
	client, err := scrapi.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := client.Register(t.Context(), e.sign(t, "genuine"))
	if err != nil {
		t.Fatalf("genuine registration while 8 clients dawdle over their bodies: %v", err)
	}
	if len(reg.Receipt) == 0 {
		t.Fatal("no receipt")
	}
	// The dawdlers are told 408 once the body deadline passes.
	for i, c := range slow {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("slow client %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("slow client %d: status %d, want 408", i, resp.StatusCode)
		}
	}
}

// signAt signs a statement of e's issuer with the given iat.
func signAt(t *testing.T, e *env, iat time.Time) []byte {
	t.Helper()
	b, err := scitt.SignStatement(t.Context(), e.issuer, scitt.Claims{Issuer: "https://ci.test", Subject: "pkg:oci/app", IssuedAt: iat}, []byte("x"+iat.String()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Issue 11 item 8: with no configured iat window, a statement with iat 100
// years ahead or before 1970 was registered.
func TestDefaultIATWindow(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	now := time.Now()
	for name, iat := range map[string]time.Time{
		"100 years ahead":           now.AddDate(100, 0, 0),
		"10 minutes ahead":          now.Add(10 * time.Minute),
		"negative":                  time.Unix(-86400, 0),
		"older than the past bound": now.Add(-transparency.DefaultIATPast - time.Hour),
	} {
		if _, err := e.svc.Register(t.Context(), signAt(t, e, iat)); !errors.Is(err, transparency.ErrRejected) {
			t.Errorf("iat %s: err = %v, want ErrRejected", name, err)
		}
	}
	for name, iat := range map[string]time.Time{
		"now":            now,
		"a minute ahead": now.Add(time.Minute),
		"two years ago":  now.AddDate(-2, 0, 0),
	} {
		if _, err := e.svc.Register(t.Context(), signAt(t, e, iat)); err != nil {
			t.Errorf("iat %s: %v", name, err)
		}
	}
	// "0s" removes a bound; an iat before 1970 stays refused.
	var pc transparency.PolicyConfig
	pc.IATWindow.Future = "0s"
	open := newEnv(t, pc)
	if _, err := open.svc.Register(t.Context(), signAt(t, open, now.AddDate(1, 0, 0))); err != nil {
		t.Errorf("future bound removed: %v", err)
	}
	if _, err := open.svc.Register(t.Context(), signAt(t, open, time.Unix(-1, 0))); !errors.Is(err, transparency.ErrRejected) {
		t.Errorf("iat before 1970 with the future bound removed: err = %v", err)
	}
	pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if doc := string(pol.Document()); !strings.Contains(doc, `"iat_window_future": "5m0s"`) {
		t.Errorf("the policy document does not state the default window:\n%s", doc)
	}
}

// Issue 11 item 8: any authenticated workload could register a statement
// whose iss is another workload; require_caller_issuer ties iss to the
// caller's WIT sub.
func TestRequireCallerIssuer(t *testing.T) {
	on := true
	e := newEnv(t, transparency.PolicyConfig{RequireCallerIssuer: &on})
	st := e.sign(t, "x") // iss https://ci.test
	caller := func(id string) context.Context {
		return wimse.NewContext(t.Context(), &wimse.Identity{WIT: &wimse.WIT{ID: wimse.RequireIdentifier(id)}})
	}
	if _, err := e.svc.Register(caller("spiffe://ci.example.org/other"), st); !errors.Is(err, transparency.ErrRejected) {
		t.Fatalf("iss is not the caller: err = %v, want ErrRejected", err)
	}
	if _, err := e.svc.Register(t.Context(), st); !errors.Is(err, transparency.ErrRejected) {
		t.Fatalf("no caller identity: err = %v, want ErrRejected", err)
	}
	b, err := scitt.SignStatement(t.Context(), e.issuer, scitt.Claims{Issuer: "spiffe://ci.example.org/me", Subject: "s"}, []byte("y"))
	if err != nil {
		t.Fatal(err)
	}
	// iss equals the caller: past this check (the trust registry still
	// applies; the issuer key is trusted for any iss here).
	if _, err := e.svc.Register(caller("spiffe://ci.example.org/me"), b); err != nil {
		t.Fatalf("iss is the caller: %v", err)
	}
	// Off by default when nothing requires WIMSE headers.
	off := newEnv(t, transparency.PolicyConfig{})
	if _, err := off.svc.Register(caller("spiffe://ci.example.org/other"), off.sign(t, "x")); err != nil {
		t.Fatalf("default policy: %v", err)
	}
}

// Issue 11 item 8: a statement marking an unknown header parameter critical
// (COSE crit, label 2) was registered; RFC 9052 §3.1 requires refusing it.
func TestRegisterRefusesUnknownCriticalHeader(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	signer, err := cose.NewSigner(cose.AlgorithmES256, e.issuer.Signer)
	if err != nil {
		t.Fatal(err)
	}
	build := func(crit []any) []byte {
		msg := cose.NewSign1Message()
		msg.Headers.Protected = cose.ProtectedHeader{
			cose.HeaderLabelAlgorithm:   cose.AlgorithmES256,
			cose.HeaderLabelKeyID:       e.issuer.KID,
			cose.HeaderLabelContentType: "text/plain",
			int64(15):                   map[int64]any{1: "https://ci.test", 2: "pkg:oci/app", 6: time.Now().Unix()},
			int64(70000):                "an extension this service does not know",
		}
		if crit != nil {
			msg.Headers.Protected[cose.HeaderLabelCritical] = crit
		}
		msg.Payload = []byte("hello " + time.Now().String())
		if err := msg.Sign(rand.Reader, nil, signer); err != nil {
			t.Fatal(err)
		}
		b, err := msg.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	resp, err := http.Post(e.srv.URL+"/entries", scrapi.MediaTypeCOSE, bytes.NewReader(build([]any{int64(70000)})))
	if err != nil {
		t.Fatal(err)
	}
	p := readProblem(t, resp)
	if resp.StatusCode != http.StatusBadRequest || p.Title != "Unknown Critical Header" {
		t.Fatalf("unknown critical header: status %d, problem %+v", resp.StatusCode, p)
	}
	// The same extension, not critical, is ignored as RFC 9052 allows.
	if _, err := e.client.Register(t.Context(), build(nil)); err != nil {
		t.Fatalf("non-critical extension: %v", err)
	}
}
