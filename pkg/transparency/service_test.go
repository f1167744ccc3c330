package transparency_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/transparency"
)

// env is a running service with an issuer key it trusts.
type env struct {
	svc    *transparency.Service
	srv    *httptest.Server
	client *scrapi.Client
	issuer *keys.PrivateKey
	dir    string
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeKey(t *testing.T, dir, name string, k *keys.PrivateKey) string {
	t.Helper()
	b, err := k.Public().MarshalJWK()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func newEnv(t *testing.T, pc transparency.PolicyConfig, trust ...*keys.PrivateKey) *env {
	t.Helper()
	issuer, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	keyDir := t.TempDir()
	files := []string{writeKey(t, keyDir, "issuer.jwk", issuer)}
	for i, k := range trust {
		files = append(files, writeKey(t, keyDir, fmt.Sprintf("extra%d.jwk", i), k))
	}
	pol, err := transparency.NewPolicy(pc, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{issuer: issuer, dir: t.TempDir(), logs: &syncBuffer{}}
	e.svc, err = transparency.Open(t.Context(), transparency.Options{Dir: e.dir, Policy: pol, Issuer: "https://ts.test",
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// The service registers its policy at start-up and integrates it in the
	// background; wait for it, so that tests comparing the log before and
	// after a request see only what the request did.
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, err := e.svc.Log().IntegratedSize(t.Context())
		if err == nil && n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the policy statement was not integrated: size %d, %v", n, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// ... and for its index record, written just after the append returns
	// (else the statement store grows under a test that checks it does not).
	pe, err := transparency.ParseEntryID(e.svc.PolicyEntry())
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	_, err = e.svc.AwaitReceipt(wctx, pe)
	wcancel()
	if err != nil {
		t.Fatalf("the policy statement has no receipt: %v", err)
	}
	e.srv = httptest.NewServer(e.svc.Handler(transparency.HandlerOptions{}))
	t.Cleanup(func() {
		e.srv.Close()
		if err := e.svc.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	e.client, err = scrapi.NewClient(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) sign(t *testing.T, payload string) []byte {
	t.Helper()
	b, err := scitt.SignStatement(t.Context(), e.issuer, scitt.Claims{Issuer: "https://ci.test", Subject: "pkg:oci/app"}, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func verifyReceipt(t *testing.T, statement, receipt []byte, ks keys.Set) *scitt.Receipt {
	t.Helper()
	r, err := scitt.ParseReceipt(receipt)
	if err != nil {
		t.Fatalf("parse receipt: %v", err)
	}
	if _, err := r.VerifyInclusion(statement, ks, scitt.LeafIETF); err != nil {
		t.Fatalf("receipt does not verify: %v", err)
	}
	return r
}

func TestRegisterEndToEnd(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	ctx := t.Context()
	stmt := e.sign(t, `{"_type":"https://in-toto.io/Statement/v1"}`)
	reg, err := e.client.Register(ctx, stmt)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	ks, err := scrapi.FetchKeys(ctx, e.srv.URL)
	if err != nil {
		t.Fatalf("fetch keys: %v", err)
	}
	r := verifyReceipt(t, stmt, reg.Receipt, ks)
	entry, _ := scitt.EntryHash(stmt)
	// A receipt issued as its first checkpoint appears shares the
	// checkpoint's signature: no per-entry sub, iat when the checkpoint was
	// seen (just after registration).
	if reg.EntryID != hex.EncodeToString(entry[:]) || r.Subject != "" || r.Issuer != "https://ts.test" {
		t.Fatalf("entry id %q, receipt sub %q iss %q; want %x, no sub and https://ts.test", reg.EntryID, r.Subject, r.Issuer, entry)
	}
	if age := time.Since(r.IssuedAt); age < -time.Second || age > transparency.SharedReceiptWindow {
		t.Fatalf("receipt iat %s is not close to now", r.IssuedAt)
	}

	// The transparent statement verifies too.
	ts, err := scitt.AddReceipt(stmt, reg.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	verifyReceipt(t, ts, reg.Receipt, ks)

	// Registering again gives the same entry and an equivalent receipt.
	again, err := e.client.Register(ctx, ts)
	if err != nil {
		t.Fatalf("re-register: %v", err)
	}
	r2 := verifyReceipt(t, stmt, again.Receipt, ks)
	if again.EntryID != reg.EntryID || r2.Inclusion[0].LeafIndex != r.Inclusion[0].LeafIndex || !r2.IssuedAt.Equal(r.IssuedAt) {
		t.Fatalf("duplicate registration: entry %s index %d, want %s index %d", again.EntryID, r2.Inclusion[0].LeafIndex, reg.EntryID, r.Inclusion[0].LeafIndex)
	}

	// The registered statement is served with its unprotected header emptied.
	got, err := e.client.Statement(ctx, reg.EntryID)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := scitt.ParseStatement(ts)
	if !bytes.Equal(got, parsed.Registered()) {
		t.Fatalf("GET statement returned %d bytes that differ from the registered form", len(got))
	}

	// Tiles and checkpoint are served read-only; an auditor rebuilds the proof.
	u, _ := url.Parse(e.srv.URL + "/")
	f, err := client.NewHTTPFetcher(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := f.ReadCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp := parseCheckpoint(t, raw)
	pb, err := client.NewProofBuilder(ctx, cp.Size, f.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	idx := r.Inclusion[0].LeafIndex
	p, err := pb.InclusionProof(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, cp.Size, rfc6962.DefaultHasher.HashLeaf(entry[:]), p, cp.Hash); err != nil {
		t.Fatalf("proof from served tiles: %v", err)
	}
	resp, err := http.Post(e.srv.URL+"/checkpoint", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("POST /checkpoint answered 200; the log must be read-only")
	}
}

func parseCheckpoint(t *testing.T, raw []byte) *log.Checkpoint {
	t.Helper()
	var cp log.Checkpoint
	i := bytes.Index(raw, []byte("\n\n"))
	if i < 0 {
		t.Fatalf("checkpoint %q has no signature block", raw)
	}
	if _, err := cp.Unmarshal(raw[:i+1]); err != nil {
		t.Fatal(err)
	}
	return &cp
}

func TestKeysAndConfiguration(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	ks, err := scrapi.FetchKeys(t.Context(), e.srv.URL)
	if err != nil || len(ks) != 1 {
		t.Fatalf("key set = %d ks, %v", len(ks), err)
	}
	kid := ks[0].KID
	if !bytes.Equal(kid, ks[0].COSEThumbprint()) {
		t.Fatalf("service kid %x is not the COSE key thumbprint", kid)
	}
	for _, tc := range []struct {
		path   string
		status int
		ct     string
	}{
		{"/.well-known/scitt-keys/" + b64(kid), 200, scrapi.MediaTypeCBOR},
		{"/.well-known/scitt-keys/" + hex.EncodeToString(kid), 200, scrapi.MediaTypeCBOR},
		{"/.well-known/scitt-keys/AAAA", 404, scrapi.MediaTypeProblemDetails},
		{"/.well-known/transparency-configuration", 200, scrapi.MediaTypeCBOR},
		{"/jwks", 200, "application/jwk-set+json"},
		{"/healthz", 200, "text/plain; charset=utf-8"},
		{"/nope", 404, scrapi.MediaTypeProblemDetails},
	} {
		resp, err := http.Get(e.srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.ct {
			t.Errorf("GET %s = %d %s, want %d %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, tc.ct)
		}
		if tc.status == 200 && strings.HasPrefix(tc.path, "/.well-known/scitt-keys/") {
			ks, err := keys.ParsePublic(body)
			if err != nil || len(ks) != 1 || !bytes.Equal(ks[0].COSEThumbprint(), kid) {
				t.Errorf("GET %s returned a different key: %v", tc.path, err)
			}
		}
	}
}

func b64(b []byte) string {
	return strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(base64Std(b)), "=")
}

func TestConsistencyReceipt(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	ctx := t.Context()
	reg1, err := e.client.Register(ctx, e.sign(t, "one"))
	if err != nil {
		t.Fatal(err)
	}
	r1, _ := scitt.ParseReceipt(reg1.Receipt)
	old := r1.Inclusion[0].TreeSize
	oldRoot := rootOf(t, e, old)
	for i := range 5 {
		if _, err := e.client.Register(ctx, e.sign(t, fmt.Sprint("more ", i))); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(fmt.Sprintf("%s/consistency?from=%d", e.srv.URL, old))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("consistency: status %d", resp.StatusCode)
	}
	cr, err := scitt.ParseReceipt(body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cr.VerifyConsistency(oldRoot, e.svc.Keys()); err != nil {
		t.Fatalf("consistency receipt does not verify: %v", err)
	}
	bad := bytes.Clone(oldRoot)
	bad[0] ^= 1
	if _, err := cr.VerifyConsistency(bad, e.svc.Keys()); err == nil {
		t.Fatal("consistency receipt verified against a wrong old root")
	}
	resp, err = http.Get(e.srv.URL + "/consistency?from=0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("from=0: status %d, want 400", resp.StatusCode)
	}
}

// rootOf recomputes the root of the tree at size from the served tiles.
func rootOf(t *testing.T, e *env, size uint64) []byte {
	t.Helper()
	u, _ := url.Parse(e.srv.URL + "/")
	f, _ := client.NewHTTPFetcher(u, nil)
	raw, err := f.ReadCheckpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cp := parseCheckpoint(t, raw)
	if cp.Size != size {
		t.Fatalf("checkpoint size %d, want %d (test assumes a quiet log)", cp.Size, size)
	}
	return cp.Hash
}

// TestWaitAnd303 checks the 303 → 302 → 200 flow with a zero wait and
// Prefer: respond-async.
func TestWaitAnd303(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	c, err := scrapi.NewClient(e.srv.URL, scrapi.WithRespondAsync())
	if err != nil {
		t.Fatal(err)
	}
	stmt := e.sign(t, "async")
	loc, reg, err := c.Submit(t.Context(), stmt)
	if err != nil || reg != nil || !strings.Contains(loc, "/entries/") {
		t.Fatalf("Submit async = %q, %v, %v; want a 303 location", loc, reg, err)
	}
	reg, err = c.Await(t.Context(), loc)
	if err != nil {
		t.Fatal(err)
	}
	verifyReceipt(t, stmt, reg.Receipt, e.svc.Keys())
}

func TestRestartKeepsEntriesAndKeys(t *testing.T) {
	issuer, _ := keys.Generate(cose.AlgorithmES256)
	keyFile := writeKey(t, t.TempDir(), "issuer.jwk", issuer)
	dir := t.TempDir()
	open := func(rotate bool) (*transparency.Service, *scrapi.Client, func()) {
		pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, []string{keyFile}, nil)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := transparency.Open(t.Context(), transparency.Options{Dir: dir, Policy: pol, RotateKey: rotate})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(svc.Handler(transparency.HandlerOptions{}))
		c, _ := scrapi.NewClient(srv.URL)
		return svc, c, func() { srv.Close(); svc.Close(context.Background()) }
	}
	svc, c, stop := open(false)
	stmt, _ := scitt.SignStatement(t.Context(), issuer, scitt.Claims{Issuer: "https://ci.test", Subject: "s"}, []byte("x"))
	reg, err := c.Register(t.Context(), stmt)
	if err != nil {
		t.Fatal(err)
	}
	oldKeys := svc.Keys()
	policyEntry := svc.PolicyEntry()
	fi, err := os.Stat(filepath.Join(dir, "keys", "service.jwk"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("service key file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	stop()

	svc, c, stop = open(true) // restart with a rotated key
	defer stop()
	if svc.PolicyEntry() != policyEntry {
		t.Fatalf("unchanged policy registered again: %s, was %s", svc.PolicyEntry(), policyEntry)
	}
	ks := svc.Keys()
	if len(ks) != 2 || bytes.Equal(ks[0].KID, oldKeys[0].KID) {
		t.Fatalf("after rotation the key set has %d ks (current %x); want the new key plus the retired one", len(ks), ks[0].KID)
	}
	verifyReceipt(t, stmt, reg.Receipt, ks) // old receipt, retired key
	again, err := c.Register(t.Context(), stmt)
	if err != nil || again.EntryID != reg.EntryID {
		t.Fatalf("re-register after restart = %+v, %v", again, err)
	}
	r := verifyReceipt(t, stmt, again.Receipt, ks)
	if !bytes.Equal(r.KID, ks[0].KID) {
		t.Fatalf("new receipt signed by %x, want the current key %x", r.KID, ks[0].KID)
	}
}

// TestEntryNotFound: a well-formed entry id the service does not know is
// 404 "Not Found"; a malformed one is 400 "Invalid locator" (SCRAPI §2.3,
// §2.4), for the receipt and for the statement.
func TestEntryNotFound(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	for _, tc := range []struct {
		id     string
		status int
		title  string
	}{
		{strings.Repeat("0", 64), http.StatusNotFound, "Not Found"},
		{"xyz", http.StatusBadRequest, "Invalid locator"},
		{strings.Repeat("A", 64), http.StatusBadRequest, "Invalid locator"},
		{strings.Repeat("0", 63), http.StatusBadRequest, "Invalid locator"},
		{strings.Repeat("g", 64), http.StatusBadRequest, "Invalid locator"},
	} {
		for _, suffix := range []string{"", "/statement"} {
			resp, err := http.Get(e.srv.URL + "/entries/" + tc.id + suffix)
			if err != nil {
				t.Fatal(err)
			}
			p := readProblem(t, resp)
			if resp.StatusCode != tc.status || p.Title != tc.title || p.Detail == "" {
				t.Errorf("GET /entries/%s%s = %d %+v, want %d %q with a detail", tc.id, suffix, resp.StatusCode, p, tc.status, tc.title)
			}
		}
	}
	_, err := e.client.Receipt(t.Context(), strings.Repeat("0", 64))
	var p *scrapi.Problem
	if !errors.As(err, &p) || p.Status != 404 {
		t.Fatalf("client.Receipt(unknown) error = %v, want a 404 problem", err)
	}
	_, err = e.client.Receipt(t.Context(), "xyz")
	if !errors.As(err, &p) || p.Status != 400 || p.Title != "Invalid locator" {
		t.Fatalf("client.Receipt(malformed) error = %v, want a 400 Invalid locator problem", err)
	}
}

func readProblem(t *testing.T, resp *http.Response) *scrapi.Problem {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != scrapi.MediaTypeProblemDetails {
		t.Errorf("problem Content-Type = %q", ct)
		return &scrapi.Problem{}
	}
	p, err := scrapi.ParseProblem(b)
	if err != nil {
		t.Fatalf("problem body: %v", err)
	}
	return p
}

// rawConn sends a request whose body stops short and closes the connection.
func disconnectMidBody(t *testing.T, srvURL string, body []byte) {
	t.Helper()
	u, _ := url.Parse(srvURL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /entries HTTP/1.1\r\nHost: %s\r\nContent-Type: application/cose\r\nContent-Length: %d\r\n\r\n", u.Host, len(body))
	conn.Write(body[:len(body)/2])
	conn.Close()
}

func newRandKey(t *testing.T, alg cose.Algorithm) *keys.PrivateKey {
	t.Helper()
	k, err := keys.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var _ = rand.Reader
var _ = time.Second

// TestRegisterAnyPayload: the service registers Signed Statements whatever
// their payload (issue 11 item 2): a plain-text hash envelope, an embedded
// CycloneDX SBOM, an opaque binary; only the statement is checked.
func TestRegisterAnyPayload(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	ctx := t.Context()
	keys, err := scrapi.FetchKeys(ctx, e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, ct string
		payload  []byte
		opts     []scitt.SignOption
	}{
		{"text", "text/plain", []byte("release notes\n"), nil},
		{"cyclonedx embedded", "application/vnd.cyclonedx+json", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`), []scitt.SignOption{scitt.WithEmbeddedPayload()}},
		{"binary", "application/octet-stream", []byte{0, 1, 2, 0xff}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			stmt, err := scitt.SignStatement(ctx, e.issuer, scitt.Claims{Issuer: "https://ci.test", Subject: "pkg:oci/app"}, c.payload,
				append(c.opts, scitt.WithContentType(c.ct))...)
			if err != nil {
				t.Fatal(err)
			}
			reg, err := e.client.Register(ctx, stmt)
			if err != nil {
				t.Fatalf("register a %s statement: %v", c.ct, err)
			}
			verifyReceipt(t, stmt, reg.Receipt, keys)
		})
	}
}
