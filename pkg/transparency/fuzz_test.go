package transparency_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/transparency"
)

// FuzzRegister feeds arbitrary bytes to the registration path: they must be
// refused with an error (never a panic) and leave the log unchanged, unless
// they are a statement validly signed by the trusted issuer.
func FuzzRegister(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "scitt-cose-v1", "*", "*.cose"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	e := newFuzzEnv(f)
	valid, err := scitt.SignStatement(context.Background(), e.issuer, scitt.Claims{Issuer: "https://ci.test", Subject: "s"}, []byte("seed"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		before, _ := e.svc.Log().IntegratedSize(context.Background())
		reg, err := e.svc.Register(context.Background(), b)
		if err != nil {
			if reg != nil {
				t.Fatal("registration returned with an error")
			}
			after, _ := e.svc.Log().IntegratedSize(context.Background())
			if after != before && !errors.Is(err, context.Canceled) {
				t.Fatalf("refused input changed the log: %d → %d", before, after)
			}
			return
		}
		st, err := scitt.ParseStatement(b)
		if err != nil {
			t.Fatalf("registered bytes that do not parse: %v", err)
		}
		if _, err := st.Verify(keys.Set{e.issuer.Public()}); err != nil {
			t.Fatalf("registered a statement that does not verify with the trusted key: %v", err)
		}
	})
}

type fuzzEnv struct {
	svc    *transparency.Service
	issuer *keys.PrivateKey
}

func newFuzzEnv(f *testing.F) *fuzzEnv {
	issuer, err := keys.Generate(-7)
	if err != nil {
		f.Fatal(err)
	}
	pub, _ := issuer.Public().MarshalJWK()
	kf := filepath.Join(f.TempDir(), "issuer.jwk")
	writeFile(f, kf, pub)
	pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, []string{kf}, nil)
	if err != nil {
		f.Fatal(err)
	}
	svc, err := transparency.Open(f.Context(), transparency.Options{Dir: f.TempDir(), Policy: pol})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { svc.Close(context.Background()) })
	return &fuzzEnv{svc: svc, issuer: issuer}
}

// FuzzParseConfig checks that the YAML configuration parser never panics and
// that what it accepts compiles or fails with ErrConfig.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("issuer: https://ts.example\npolicy:\n  algorithms: [ES256]\n  iat_window: {past: 24h}\n"))
	f.Add([]byte("policy: {max_statement_size: -1}"))
	f.Add([]byte("unknown: 1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := transparency.ParseConfig(b)
		if err != nil {
			if !errors.Is(err, transparency.ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			return
		}
		if _, err := transparency.NewPolicy(c.Policy, nil, nil); err != nil && !errors.Is(err, transparency.ErrConfig) {
			t.Fatalf("policy error %v does not wrap ErrConfig", err)
		}
	})
}

// FuzzParseEntryID checks entry ids: accepted ids are canonical.
func FuzzParseEntryID(f *testing.F) {
	f.Add("0000000000000000000000000000000000000000000000000000000000000000")
	f.Add("xyz")
	f.Fuzz(func(t *testing.T, id string) {
		e, err := transparency.ParseEntryID(id)
		if err != nil {
			if !errors.Is(err, transparency.ErrNotFound) {
				t.Fatalf("error %v does not wrap ErrNotFound", err)
			}
			return
		}
		if got := (&transparency.Registration{Entry: e}).ID(); got != id {
			t.Fatalf("accepted non-canonical id %q (canonical %q)", id, got)
		}
	})
}

// FuzzReadOnlyPaths requests arbitrary paths under the read-only log and
// entry resources: the answer is a success, redirect or 4xx, never a 5xx.
func FuzzReadOnlyPaths(f *testing.F) {
	for _, p := range []string{"/tile/0/000", "/tile/0/x001/234.p/8", "/tile/entries/000.p/3", "/tile/entries/x.p/", "/tile/99/000",
		"/checkpoint", "/entries/00/statement", "/.well-known/scitt-keys/__", "/consistency?from=1&to=x"} {
		f.Add(p)
	}
	e := newFuzzEnv(f)
	h := e.svc.Handler(transparency.HandlerOptions{})
	f.Fuzz(func(t *testing.T, p string) {
		req, err := http.NewRequest(http.MethodGet, "http://ts.test/", nil)
		if err != nil {
			return
		}
		u, err := url.Parse("http://ts.test" + p)
		if err != nil || !strings.HasPrefix(u.Path, "/") {
			return
		}
		req.URL = u
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(ctx))
		switch rec.Code {
		case 200, 301, 302, 307, 308, 400, 404, 405: // 301/307/308: ServeMux path cleaning
		default:
			t.Fatalf("GET %q answered %d: %s", p, rec.Code, rec.Body.Bytes())
		}
	})
}
