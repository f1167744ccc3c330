package transparency_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/transparency"
)

// signRaw builds a COSE_Sign1 with exactly the given protected header.
func signRaw(t *testing.T, k *keys.PrivateKey, hdr cose.ProtectedHeader, payload []byte) []byte {
	t.Helper()
	msg := cose.NewSign1Message()
	msg.Headers.Protected = hdr
	msg.Payload = payload
	s, err := cose.NewSigner(k.Alg, k.Signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := msg.Sign(rand.Reader, nil, s); err != nil {
		t.Fatal(err)
	}
	b, err := msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logState is what must not change when a registration is refused.
func logState(t *testing.T, e *env) (uint64, int) {
	t.Helper()
	n, err := e.svc.Log().IntegratedSize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(e.dir, "statements"))
	if err != nil {
		t.Fatal(err)
	}
	return n, int(fi.Size())
}

func TestBadInput(t *testing.T) {
	edKey := newRandKey(t, cose.AlgorithmEdDSA)
	goodIssuerKey := newRandKey(t, cose.AlgorithmES256)
	untrusted := newRandKey(t, cose.AlgorithmES256)
	keyDir := t.TempDir()
	e := newEnv(t, transparency.PolicyConfig{
		Algorithms: []string{"ES256"},
		TrustedIssuers: []transparency.TrustedIssuer{{Issuer: "https://good.test",
			Keys: []string{writeKey(t, keyDir, "good.jwk", goodIssuerKey)}}},
	}, edKey)
	ctx := t.Context()

	valid := e.sign(t, "valid")
	badSig := bytes.Clone(valid)
	badSig[len(badSig)-5] ^= 0xff
	wrongTag := append([]byte{0xd8, 0x62}, valid[1:]...) // tag 98 (COSE_Sign) instead of 18
	untagged := valid[1:]
	edSigned, _ := scitt.SignStatement(ctx, edKey, scitt.Claims{Issuer: "https://ci.test", Subject: "s"}, []byte("x"))
	unknownKid, _ := scitt.SignStatement(ctx, untrusted, scitt.Claims{Issuer: "https://ci.test", Subject: "s"}, []byte("x"))
	otherIssuer, _ := scitt.SignStatement(ctx, goodIssuerKey, scitt.Claims{Issuer: "https://evil.test", Subject: "s"}, []byte("x"))
	noClaims := signRaw(t, e.issuer, cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256, cose.HeaderLabelKeyID: e.issuer.KID}, []byte("x"))
	noSub := signRaw(t, e.issuer, cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256, cose.HeaderLabelKeyID: e.issuer.KID,
		int64(15): map[any]any{int64(1): "https://ci.test"}}, []byte("x"))
	noKid := signRaw(t, e.issuer, cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256,
		int64(15): map[any]any{int64(1): "https://ci.test", int64(2): "s"}}, []byte("x"))
	tooOld := signRaw(t, e.issuer, cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256, cose.HeaderLabelKeyID: e.issuer.KID,
		int64(15): map[any]any{int64(1): "https://ci.test", int64(2): "s", int64(6): int64(1)}}, []byte("x"))
	_ = tooOld

	cases := []struct {
		name   string
		ct     string
		body   []byte
		status int
		title  string
	}{
		{"malformed CBOR", scrapi.MediaTypeCOSE, []byte{0xd2, 0x84, 0xff, 0x00}, 400, "Malformed request"},
		{"not CBOR at all", scrapi.MediaTypeCOSE, []byte("hello"), 400, "Malformed request"},
		{"empty body", scrapi.MediaTypeCOSE, nil, 400, "Malformed request"},
		{"wrong tag", scrapi.MediaTypeCOSE, wrongTag, 400, "Malformed request"},
		{"untagged", scrapi.MediaTypeCOSE, untagged, 400, "Malformed request"},
		{"oversize body", scrapi.MediaTypeCOSE, make([]byte, transparency.DefaultMaxStatementSize+1), 413, "Payload Too Large"},
		{"wrong content type", "application/json", valid, 415, "Unsupported Media Type"},
		{"unsupported algorithm", scrapi.MediaTypeStatement, edSigned, 400, "Bad Signature Algorithm"},
		{"missing CWT claims", scrapi.MediaTypeCOSE, noClaims, 400, "Missing CWT Claims"},
		{"missing sub", scrapi.MediaTypeCOSE, noSub, 400, "Missing CWT Claims"},
		{"missing kid", scrapi.MediaTypeCOSE, noKid, 400, "Rejected"},
		{"unknown kid", scrapi.MediaTypeCOSE, unknownKid, 400, "Unknown Key"},
		{"untrusted issuer", scrapi.MediaTypeCOSE, otherIssuer, 400, "Untrusted Issuer"},
		{"bad signature", scrapi.MediaTypeCOSE, badSig, 400, "Bad Signature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n0, s0 := logState(t, e)
			resp, err := http.Post(e.srv.URL+"/entries", tc.ct, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			p := readProblem(t, resp)
			if resp.StatusCode != tc.status || p.Title != tc.title || p.Detail == "" {
				t.Fatalf("status %d, problem %+v; want %d %q with a detail", resp.StatusCode, p, tc.status, tc.title)
			}
			if n1, s1 := logState(t, e); n1 != n0 || s1 != s0 {
				t.Fatalf("log changed: size %d→%d, statement store %d→%d bytes", n0, n1, s0, s1)
			}
		})
	}

	t.Run("oversize chunked body", func(t *testing.T) {
		n0, s0 := logState(t, e)
		pr, pw := ioPipe()
		go func() {
			pw.Write(make([]byte, transparency.DefaultMaxStatementSize+10))
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/entries", pr)
		req.Header.Set("Content-Type", scrapi.MediaTypeCOSE)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		p := readProblem(t, resp)
		if resp.StatusCode != 413 || p.Title != "Payload Too Large" {
			t.Fatalf("status %d %+v, want 413", resp.StatusCode, p)
		}
		if n1, s1 := logState(t, e); n1 != n0 || s1 != s0 {
			t.Fatalf("log changed")
		}
	})

	t.Run("duplicate registration", func(t *testing.T) {
		r1, err := e.client.Register(ctx, valid)
		if err != nil {
			t.Fatal(err)
		}
		n0, s0 := logState(t, e)
		r2, err := e.client.Register(ctx, valid)
		if err != nil {
			t.Fatal(err)
		}
		if r1.EntryID != r2.EntryID {
			t.Fatalf("duplicate got entry %s, first %s", r2.EntryID, r1.EntryID)
		}
		if n1, s1 := logState(t, e); n1 != n0 || s1 != s0 {
			t.Fatalf("duplicate registration changed the log: size %d→%d, store %d→%d", n0, n1, s0, s1)
		}
	})

	t.Run("client disconnects mid-request", func(t *testing.T) {
		n0, s0 := logState(t, e)
		disconnectMidBody(t, e.srv.URL, e.sign(t, "never finished"))
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(e.logs.String(), `"title":"Incomplete Request"`) {
			if time.Now().After(deadline) {
				t.Fatalf("no Incomplete Request problem logged; logs:\n%s", e.logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(e.logs.String(), `"status":400`) {
			t.Fatalf("disconnect not answered with 400")
		}
		if n1, s1 := logState(t, e); n1 != n0 || s1 != s0 {
			t.Fatalf("log changed")
		}
		// The service still works.
		if _, err := e.client.Register(ctx, e.sign(t, "after disconnect")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("iat window", func(t *testing.T) {
		pc := transparency.PolicyConfig{}
		pc.IATWindow.Past = "24h"
		e2 := newEnv(t, pc)
		old := signRaw(t, e2.issuer, cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256, cose.HeaderLabelKeyID: e2.issuer.KID,
			int64(15): map[any]any{int64(1): "https://ci.test", int64(2): "s", int64(6): time.Now().Add(-48 * time.Hour).Unix()}}, []byte("x"))
		resp, err := http.Post(e2.srv.URL+"/entries", scrapi.MediaTypeCOSE, bytes.NewReader(old))
		if err != nil {
			t.Fatal(err)
		}
		if p := readProblem(t, resp); resp.StatusCode != 400 || p.Title != "Rejected" {
			t.Fatalf("old iat: %d %+v, want 400 Rejected", resp.StatusCode, p)
		}
		// No iat at all is accepted (other issuers often omit it).
		if _, err := e2.client.Register(ctx, e2.sign(t, "no iat")); err != nil {
			t.Fatalf("statement without iat refused: %v", err)
		}
	})
}
